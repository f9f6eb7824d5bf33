-- Retention (docs/audit.md, "Retention"): whole runs may be dropped, but
-- only by Retain, which writes a retention seal recording what it drops in
-- the same transaction and lifts the delete guard for that transaction
-- only, with a transaction-local setting naming the tenant. Everything else
-- is still refused: UPDATE and TRUNCATE always, DELETE without the setting.
-- Privileges stay as they were: writer and auditor roles have no DELETE at
-- all, so only the schema owner can run a retention.

ALTER TABLE audit_seals
    ADD COLUMN retention jsonb CHECK (retention IS NULL OR jsonb_typeof(retention) = 'object');

CREATE FUNCTION audit_events_guard_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('warden.audit_retention', true) = OLD.tenant THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % rejected (whole runs are dropped only by warden audit retain)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

DROP TRIGGER audit_events_no_update_delete ON audit_events;
CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_guard_change();
