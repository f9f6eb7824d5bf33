-- The delete guard no longer trusts a setting (migration 0006 let any role
-- that may DELETE lift it with SET LOCAL warden.audit_retention). A row may
-- be deleted only in the transaction that wrote its tenant's newest seal,
-- a retention seal, and only if that seal lists the row's run and seq
-- range: a delete is then always recorded in the seal chain (signed when
-- the sealer has a key), where verify checks it. Still possible for the
-- schema owner: DROP TRIGGER, or a retention seal of its own making;
-- signed, anchored seals make both visible to verify (docs/audit.md).

CREATE OR REPLACE FUNCTION audit_events_guard_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM (
            SELECT s.kind, s.xmin AS x FROM audit_seals s
            WHERE s.tenant = OLD.tenant ORDER BY s.seal_index DESC LIMIT 1
        ) newest
        WHERE newest.kind = 'retention' AND newest.x = pg_current_xact_id()::xid
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % rejected (whole runs are dropped only by warden audit retain)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

-- After each DELETE statement: every deleted row must belong to a run
-- (workflow and seq range) of the retention seal written by this
-- transaction for its tenant.
CREATE FUNCTION audit_events_check_retention() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stray bigint;
BEGIN
    WITH newest AS (
        SELECT s.* FROM (SELECT DISTINCT tenant FROM dropped) t
        CROSS JOIN LATERAL (
            SELECT s.tenant, s.kind, s.retention, s.xmin AS x FROM audit_seals s
            WHERE s.tenant = t.tenant ORDER BY s.seal_index DESC LIMIT 1
        ) s
    ), allowed AS (
        SELECT n.tenant, c.workflow_id, c.first_seq, c.last_seq
        FROM newest n
        CROSS JOIN LATERAL jsonb_to_recordset(n.retention -> 'chains') AS c(workflow_id text, first_seq bigint, last_seq bigint)
        WHERE n.kind = 'retention' AND n.x = pg_current_xact_id()::xid
    )
    SELECT count(*) INTO stray FROM dropped d
    WHERE NOT EXISTS (
        SELECT 1 FROM allowed a
        WHERE a.tenant = d.tenant AND a.workflow_id = d.workflow_id AND d.seq BETWEEN a.first_seq AND a.last_seq
    );
    IF stray > 0 THEN
        RAISE EXCEPTION 'audit_events is append-only: % deleted row(s) are not in the runs this transaction''s retention seal lists', stray
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER audit_events_retention_only
    AFTER DELETE ON audit_events
    REFERENCING OLD TABLE AS dropped
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_check_retention();
