-- Payloads: content-addressed blobs passed through the workflow by reference.
CREATE TABLE IF NOT EXISTS payloads (
    ref        TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
