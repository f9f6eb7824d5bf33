-- The append-only action log. occurred_at and recorded_at are UTC RFC 3339
-- text with a fixed-width fraction, so text order is time order.

CREATE TABLE audit_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    tenant          TEXT    NOT NULL,
    workflow_id     TEXT    NOT NULL,
    run_id          TEXT    NOT NULL DEFAULT '',
    step            INTEGER NOT NULL DEFAULT 0,
    call_id         TEXT    NOT NULL DEFAULT '',
    actor           TEXT    NOT NULL DEFAULT '',
    tool            TEXT    NOT NULL DEFAULT '',
    args            TEXT    CHECK (args IS NULL OR json_valid(args)),
    result          TEXT    CHECK (result IS NULL OR json_valid(result)),
    decision        TEXT    NOT NULL DEFAULT '',
    risk            TEXT    NOT NULL DEFAULT '',
    reasons         TEXT    CHECK (reasons IS NULL OR json_type(reasons) = 'array'),
    policy_revision TEXT    NOT NULL DEFAULT '',
    request_id      TEXT    NOT NULL DEFAULT '',
    model           TEXT    NOT NULL DEFAULT '',
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    message         TEXT    NOT NULL DEFAULT '',
    occurred_at     TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX audit_events_tenant_occurred_at ON audit_events (tenant, occurred_at);
CREATE INDEX audit_events_workflow_id_seq ON audit_events (workflow_id, seq);
CREATE INDEX audit_events_tool ON audit_events (tool);
CREATE INDEX audit_events_event_type ON audit_events (event_type);

-- Rows are never changed or removed. SQLite has no TRUNCATE; a DELETE
-- without WHERE fires these triggers too (they disable the truncate
-- optimization).
CREATE TRIGGER audit_events_no_update
    BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete
    BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
