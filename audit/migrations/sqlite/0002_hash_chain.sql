-- Tamper evidence: see the PostgreSQL migration of the same number.

ALTER TABLE audit_events ADD COLUMN redactions TEXT CHECK (redactions IS NULL OR json_type(redactions) = 'array');
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';

CREATE UNIQUE INDEX audit_events_hash ON audit_events (hash) WHERE hash <> '';
CREATE INDEX audit_events_tenant_workflow_seq ON audit_events (tenant, workflow_id, seq);
CREATE INDEX audit_events_tenant_seq ON audit_events (tenant, seq);

CREATE TABLE audit_seals (
    tenant      TEXT    NOT NULL,
    seal_index  INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    from_seq    INTEGER NOT NULL,
    to_seq      INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    heads       TEXT    NOT NULL CHECK (json_type(heads) = 'array'),
    sealed_at   TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    PRIMARY KEY (tenant, seal_index)
);

CREATE TRIGGER audit_seals_no_update
    BEFORE UPDATE ON audit_seals
BEGIN
    SELECT RAISE(ABORT, 'audit_seals is append-only');
END;

CREATE TRIGGER audit_seals_no_delete
    BEFORE DELETE ON audit_seals
BEGIN
    SELECT RAISE(ABORT, 'audit_seals is append-only');
END;
