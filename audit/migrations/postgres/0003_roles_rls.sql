-- Enforced append-only and per-tenant reading (docs/audit.md, "Roles").
--
-- Two group roles, cluster-wide and shared by every schema that runs this
-- migration (created when missing and the migrating user may create roles;
-- "already exists" is fine):
--   warden_audit_writer   INSERT and SELECT (chain heads) on the log and the
--                         seals: no UPDATE, DELETE or TRUNCATE. For workers.
--   warden_audit_auditor  SELECT only, and row-level security shows only the
--                         tenants granted in audit_tenant_access to a role the
--                         session is a member of ('*' grants every tenant).
-- Login roles are members of one of them, for example
--   CREATE ROLE worker LOGIN IN ROLE warden_audit_writer;
--   CREATE ROLE acme_auditor LOGIN IN ROLE warden_audit_auditor;
--   INSERT INTO audit_tenant_access VALUES ('acme_auditor', 'acme');
-- The table owner (who runs migrations) bypasses row-level security.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['warden_audit_writer', 'warden_audit_auditor'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created concurrently by another schema's migration
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role % does not exist and % may not create it: ask an administrator', r, current_user;
            END;
        END IF;
    END LOOP;
END;
$$;

-- Which tenants each auditor role may read.
CREATE TABLE audit_tenant_access (
    role_name text NOT NULL,
    tenant    text NOT NULL,
    PRIMARY KEY (role_name, tenant)
);

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_seals ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_tenant_access ENABLE ROW LEVEL SECURITY;

DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_audit_writer') THEN
        EXECUTE 'GRANT USAGE ON SCHEMA ' || s || ' TO warden_audit_writer';
        GRANT SELECT, INSERT ON audit_events, audit_seals TO warden_audit_writer;
        GRANT USAGE ON SEQUENCE audit_events_seq_seq TO warden_audit_writer;
        GRANT SELECT ON schema_migrations TO warden_audit_writer;
        CREATE POLICY audit_events_writer ON audit_events TO warden_audit_writer USING (true) WITH CHECK (true);
        CREATE POLICY audit_seals_writer ON audit_seals TO warden_audit_writer USING (true) WITH CHECK (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_audit_auditor') THEN
        EXECUTE 'GRANT USAGE ON SCHEMA ' || s || ' TO warden_audit_auditor';
        GRANT SELECT ON audit_events, audit_seals, audit_tenant_access, schema_migrations TO warden_audit_auditor;
        -- An auditor sees only the grants of roles it is a member of...
        CREATE POLICY audit_tenant_access_own ON audit_tenant_access FOR SELECT TO warden_audit_auditor
            USING (role_name IN (SELECT rolname FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER')));
        -- ...and only the rows of those tenants.
        CREATE POLICY audit_events_auditor ON audit_events FOR SELECT TO warden_audit_auditor
            USING (tenant IN (SELECT a.tenant FROM audit_tenant_access a)
                   OR EXISTS (SELECT 1 FROM audit_tenant_access a WHERE a.tenant = '*'));
        CREATE POLICY audit_seals_auditor ON audit_seals FOR SELECT TO warden_audit_auditor
            USING (tenant IN (SELECT a.tenant FROM audit_tenant_access a)
                   OR EXISTS (SELECT 1 FROM audit_tenant_access a WHERE a.tenant = '*'));
    END IF;
END;
$$;
