package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The group roles of the PostgreSQL store (docs/audit.md, "Roles"). They
// are cluster-wide: every schema's migrations grant to the same two.
const (
	// WriterRole may INSERT and SELECT the log, the seals and the payloads:
	// no UPDATE, DELETE or TRUNCATE. The worker's login is a member.
	WriterRole = "warden_audit_writer"
	// AuditorRole may SELECT, and row-level security shows it only the
	// tenants granted to it in audit_tenant_access.
	AuditorRole = "warden_audit_auditor"
)

// LoginRole is a login role MigratePostgres creates or updates as a member
// of one group role.
type LoginRole struct {
	// Name is the login's role name.
	Name string
	// Group is WriterRole or AuditorRole.
	Group string
	// Password is the login's password in plain text (printable ASCII),
	// or a SCRAM-SHA-256 verifier as PostgreSQL stores it. The server only
	// ever receives a verifier, so the password reaches no server log.
	// Empty leaves an existing login's password as it is.
	Password string
	// Tenants are the tenants an auditor login may read ("*" for all),
	// added to audit_tenant_access. Only for AuditorRole.
	Tenants []string
}

// MigrateOptions are the optional parts of MigratePostgres.
type MigrateOptions struct {
	// Logins are created or updated after the migrations and grants.
	Logins []LoginRole
}

// MigrateReport says what MigratePostgres did.
type MigrateReport struct {
	// Schema and User are the schema migrated and the user who did it.
	Schema string `json:"schema"`
	User   string `json:"user"`
	// Version is the schema's migration version after the call.
	Version int64 `json:"version"`
	// Applied are the migrations this call applied, oldest first.
	Applied []string `json:"applied"`
	// Actions are the role, grant, policy and login changes made, in
	// order; empty when everything was in place.
	Actions []string `json:"actions"`
}

// MigratePostgres brings the audit schema at dsn up to date as its owner:
// it creates the group roles when missing, applies the pending migrations,
// restores any grant or row-level security policy of the group roles that
// is missing (a schema migrated while the roles could not be created has
// none), and creates or updates the logins. Every step is idempotent: a
// second call changes nothing and reports no action. The session's user
// must own the schema's tables (or be a superuser) and, to create roles,
// have CREATEROLE.
func MigratePostgres(ctx context.Context, dsn string, opts MigrateOptions) (*MigrateReport, error) {
	for _, l := range opts.Logins {
		if err := l.validate(); err != nil {
			return nil, fmt.Errorf("migrate audit store: %w", err)
		}
	}
	pool, err := newPool(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("migrate audit store: %w", err)
	}
	defer pool.Close()
	rep := &MigrateReport{}
	if err := migrateAll(ctx, pool, rep, opts); err != nil {
		return nil, fmt.Errorf("migrate audit store: %w", err)
	}
	// Empty lists, not null, in JSON.
	rep.Applied = append([]string{}, rep.Applied...)
	rep.Actions = append([]string{}, rep.Actions...)
	return rep, nil
}

// migrateAll runs MigratePostgres's steps in order: group roles (so that
// the migrations grant to them), migrations, missing grants and policies,
// logins.
func migrateAll(ctx context.Context, pool *pgxpool.Pool, rep *MigrateReport, opts MigrateOptions) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("check the database URL and that Postgres is running: %w", err)
	}
	defer conn.Release()
	var schema *string
	if err := conn.QueryRow(ctx, "SELECT current_user, current_schema()").Scan(&rep.User, &schema); err != nil {
		return err
	}
	if schema == nil {
		return errors.New("search_path names no existing schema: create the schema or fix search_path in the database URL")
	}
	rep.Schema = *schema
	if err := mayMigrate(ctx, conn.Conn(), rep.Schema); err != nil {
		return err
	}
	if err := withRolesLock(ctx, conn.Conn(), rep.Schema, func(tx pgx.Tx) error {
		return ensureGroupRoles(ctx, tx, rep)
	}); err != nil {
		return err
	}
	// The store's own migration path (its advisory lock, one transaction
	// per migration), on another connection of the pool.
	p := &Postgres{pool: pool}
	if rep.Applied, err = p.migrate(ctx); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&rep.Version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	return withRolesLock(ctx, conn.Conn(), rep.Schema, func(tx pgx.Tx) error {
		if err := ensureGrants(ctx, tx, rep); err != nil {
			return err
		}
		for _, l := range opts.Logins {
			if err := ensureLogin(ctx, tx, rep, l); err != nil {
				return fmt.Errorf("login %s: %w", l.Name, err)
			}
		}
		return nil
	})
}

// withRolesLock runs fn in a transaction holding the schema's migration
// lock and a cluster-wide lock for role changes (roles are shared by every
// schema).
func withRolesLock(ctx context.Context, conn *pgx.Conn, schema string, fn func(pgx.Tx) error) error {
	h := fnv.New64a()
	h.Write([]byte("warden/audit/roles"))
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock($2)",
			int64(h.Sum64()), migrationLockKey(schema)); err != nil {
			return fmt.Errorf("take advisory locks: %w", err)
		}
		return fn(tx)
	})
}

// ensureGroupRoles creates the group roles that do not exist.
func ensureGroupRoles(ctx context.Context, tx pgx.Tx, rep *MigrateReport) error {
	for _, role := range []string{WriterRole, AuditorRole} {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
			return err
		}
		if exists {
			continue
		}
		if _, err := tx.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" NOLOGIN"); err != nil {
			if isInsufficientPrivilege(err) {
				return fmt.Errorf("role %s does not exist and user %s may not create roles: connect as a user with CREATEROLE, "+
					"or have an administrator run CREATE ROLE %s NOLOGIN: %w", role, rep.User, role, err)
			}
			return fmt.Errorf("create role %s: %w", role, err)
		}
		rep.Actions = append(rep.Actions, "created group role "+role+" (NOLOGIN)")
	}
	return nil
}

// grant is one privilege a group role holds on an object of the schema.
type grant struct {
	role, kind, object, privilege string
}

// roleGrants are the privileges migrations 0003-0005 give the group roles:
// exactly these, no UPDATE, DELETE or TRUNCATE anywhere.
var roleGrants = func() []grant {
	var g []grant
	add := func(role, kind, privilege string, objects ...string) {
		for _, o := range objects {
			g = append(g, grant{role, kind, o, privilege})
		}
	}
	add(WriterRole, "SCHEMA", "USAGE", "")
	add(WriterRole, "TABLE", "SELECT", "audit_events", "audit_seals", "schema_migrations", "payloads")
	add(WriterRole, "TABLE", "INSERT", "audit_events", "audit_seals", "payloads")
	add(WriterRole, "SEQUENCE", "USAGE", "audit_events_seq_seq")
	add(AuditorRole, "SCHEMA", "USAGE", "")
	add(AuditorRole, "TABLE", "SELECT", "audit_events", "audit_seals", "audit_tenant_access", "schema_migrations",
		"audit_tool_calls", "audit_approvals")
	return g
}()

// policy is a row-level security policy of migration 0003.
type policy struct {
	table, name, sql string
}

// rolePolicies are the row-level security policies of migration 0003, as
// it creates them when the group roles exist.
var rolePolicies = []policy{
	{"audit_events", "audit_events_writer", "CREATE POLICY audit_events_writer ON audit_events TO warden_audit_writer USING (true) WITH CHECK (true)"},
	{"audit_seals", "audit_seals_writer", "CREATE POLICY audit_seals_writer ON audit_seals TO warden_audit_writer USING (true) WITH CHECK (true)"},
	{"audit_tenant_access", "audit_tenant_access_own", `CREATE POLICY audit_tenant_access_own ON audit_tenant_access FOR SELECT TO warden_audit_auditor
		USING (role_name IN (SELECT rolname FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER')))`},
	{"audit_events", "audit_events_auditor", `CREATE POLICY audit_events_auditor ON audit_events FOR SELECT TO warden_audit_auditor
		USING (tenant IN (SELECT a.tenant FROM audit_tenant_access a)
		       OR EXISTS (SELECT 1 FROM audit_tenant_access a WHERE a.tenant = '*'))`},
	{"audit_seals", "audit_seals_auditor", `CREATE POLICY audit_seals_auditor ON audit_seals FOR SELECT TO warden_audit_auditor
		USING (tenant IN (SELECT a.tenant FROM audit_tenant_access a)
		       OR EXISTS (SELECT 1 FROM audit_tenant_access a WHERE a.tenant = '*'))`},
}

// ensureGrants grants what the group roles lack and creates the missing
// policies, reporting each.
func ensureGrants(ctx context.Context, tx pgx.Tx, rep *MigrateReport) error {
	schema := pgx.Identifier{rep.Schema}.Sanitize()
	for _, g := range roleGrants {
		var has bool
		var check, stmt string
		args := []any{g.role, g.object, g.privilege}
		switch g.kind {
		case "SCHEMA":
			check = "SELECT has_schema_privilege($1, current_schema(), $2)"
			args = []any{g.role, g.privilege}
			stmt = fmt.Sprintf("GRANT %s ON SCHEMA %s TO %s", g.privilege, schema, g.role)
		case "SEQUENCE":
			check = "SELECT has_sequence_privilege($1, $2::regclass, $3)"
			stmt = fmt.Sprintf("GRANT %s ON SEQUENCE %s TO %s", g.privilege, g.object, g.role)
		default:
			check = "SELECT has_table_privilege($1, $2::regclass, $3)"
			stmt = fmt.Sprintf("GRANT %s ON %s TO %s", g.privilege, g.object, g.role)
		}
		if err := tx.QueryRow(ctx, check, args...).Scan(&has); err != nil {
			return fmt.Errorf("check %s %s on %s: %w", g.role, g.privilege, cmpObject(g), err)
		}
		if has {
			continue
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("grant %s on %s to %s: %w", g.privilege, cmpObject(g), g.role, err)
		}
		rep.Actions = append(rep.Actions, fmt.Sprintf("granted %s on %s to %s", g.privilege, cmpObject(g), g.role))
	}
	for _, p := range rolePolicies {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = current_schema() AND tablename = $1 AND policyname = $2)",
			p.table, p.name).Scan(&exists); err != nil {
			return fmt.Errorf("check policy %s: %w", p.name, err)
		}
		if exists {
			continue
		}
		if _, err := tx.Exec(ctx, p.sql); err != nil {
			return fmt.Errorf("create policy %s: %w", p.name, err)
		}
		rep.Actions = append(rep.Actions, fmt.Sprintf("created row-level security policy %s on %s", p.name, p.table))
	}
	return nil
}

func cmpObject(g grant) string {
	if g.kind == "SCHEMA" {
		return "schema (current)"
	}
	return g.object
}

func isInsufficientPrivilege(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}
