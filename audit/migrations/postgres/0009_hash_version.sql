-- Hash version 2 (docs/audit.md, "The chain"): the writer chooses seq and
-- recorded_at before it hashes the row, so both are covered by the hash.
-- Rows written before keep version 1 and verify as they did.

ALTER TABLE audit_events
    ADD COLUMN hash_version smallint NOT NULL DEFAULT 1 CHECK (hash_version IN (1, 2));
