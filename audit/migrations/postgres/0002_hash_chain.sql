-- Tamper evidence: every event carries the hash of the previous event of
-- its chain (tenant, workflow_id) and its own hash (docs/audit.md defines
-- the encoding). Rows written before this migration have empty hashes and
-- verify reports them as unchained.

ALTER TABLE audit_events
    ADD COLUMN redactions jsonb CHECK (redactions IS NULL OR jsonb_typeof(redactions) = 'array'),
    ADD COLUMN prev_hash  text NOT NULL DEFAULT '',
    ADD COLUMN hash       text NOT NULL DEFAULT '';

-- A hash names one row: a copy of a row under another ID cannot reuse it.
CREATE UNIQUE INDEX audit_events_hash ON audit_events (hash) WHERE hash <> '';
-- Chain heads (the last row of a tenant's workflow) and the tenant's trail.
CREATE INDEX audit_events_tenant_workflow_seq ON audit_events (tenant, workflow_id, seq);
CREATE INDEX audit_events_tenant_seq ON audit_events (tenant, seq);

-- Seals: per tenant, a chain of checkpoints over the heads of the runs that
-- changed since the previous seal, so that deleting a whole run (or the
-- tail of one) is detected too.
CREATE TABLE audit_seals (
    tenant      text        NOT NULL,
    seal_index  bigint      NOT NULL,
    kind        text        NOT NULL,
    from_seq    bigint      NOT NULL,
    to_seq      bigint      NOT NULL,
    event_count bigint      NOT NULL,
    heads       jsonb       NOT NULL CHECK (jsonb_typeof(heads) = 'array'),
    sealed_at   timestamptz NOT NULL,
    prev_hash   text        NOT NULL,
    hash        text        NOT NULL UNIQUE,
    PRIMARY KEY (tenant, seal_index)
);

CREATE TRIGGER audit_seals_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION audit_events_reject_change();

CREATE TRIGGER audit_seals_no_truncate
    BEFORE TRUNCATE ON audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_reject_change();
