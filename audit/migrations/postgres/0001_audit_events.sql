-- The append-only action log. Every name is unqualified so the migration
-- creates its objects in the current schema (the first on search_path).

CREATE TABLE audit_events (
    seq             bigserial   PRIMARY KEY,
    event_id        text        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    tenant          text        NOT NULL,
    workflow_id     text        NOT NULL,
    run_id          text        NOT NULL DEFAULT '',
    step            integer     NOT NULL DEFAULT 0,
    call_id         text        NOT NULL DEFAULT '',
    actor           text        NOT NULL DEFAULT '',
    tool            text        NOT NULL DEFAULT '',
    args            jsonb,
    result          jsonb,
    decision        text        NOT NULL DEFAULT '',
    risk            text        NOT NULL DEFAULT '',
    reasons         jsonb       CHECK (reasons IS NULL OR jsonb_typeof(reasons) = 'array'),
    policy_revision text        NOT NULL DEFAULT '',
    request_id      text        NOT NULL DEFAULT '',
    model           text        NOT NULL DEFAULT '',
    input_tokens    integer     NOT NULL DEFAULT 0,
    output_tokens   integer     NOT NULL DEFAULT 0,
    message         text        NOT NULL DEFAULT '',
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_events_tenant_occurred_at ON audit_events (tenant, occurred_at);
CREATE INDEX audit_events_workflow_id_seq ON audit_events (workflow_id, seq);
CREATE INDEX audit_events_tool ON audit_events (tool);
CREATE INDEX audit_events_event_type ON audit_events (event_type);

-- Rows are never changed or removed: the database itself refuses, whatever
-- the client.
CREATE FUNCTION audit_events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % rejected', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_reject_change();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_reject_change();
