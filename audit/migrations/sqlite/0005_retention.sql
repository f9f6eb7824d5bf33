-- Retention: see the PostgreSQL migration of the same name. SQLite has no
-- transaction-local settings, so Retain marks its tenant in
-- audit_retention_in_progress and removes the mark before it commits: the
-- mark is never visible outside the retention transaction.

ALTER TABLE audit_seals ADD COLUMN retention TEXT CHECK (retention IS NULL OR json_type(retention) = 'object');

CREATE TABLE audit_retention_in_progress (
    tenant TEXT PRIMARY KEY
);

DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete
    BEFORE DELETE ON audit_events
    WHEN NOT EXISTS (SELECT 1 FROM audit_retention_in_progress WHERE tenant = OLD.tenant)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only (whole runs are dropped only by warden audit retain)');
END;
