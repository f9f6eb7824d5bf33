-- Payloads: content-addressed blobs (conversation chunks) passed through
-- the workflow by reference, so prompts do not grow Temporal histories.
-- Not part of the audit trail: no chain, no redaction.
CREATE TABLE IF NOT EXISTS payloads (
    ref        text PRIMARY KEY,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_audit_writer') THEN
        GRANT SELECT, INSERT ON payloads TO warden_audit_writer;
    END IF;
END
$$;
