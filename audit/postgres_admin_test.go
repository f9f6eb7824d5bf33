package audit

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/testenv"
)

// dropRolesAtEnd drops the named roles when the test ends (before the
// schema is dropped: cleanups run last first).
func dropRolesAtEnd(t *testing.T, dsn string, names ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		for _, n := range names {
			_, err = conn.Exec(ctx, "DROP ROLE IF EXISTS "+n)
			require.NoError(t, err)
		}
	})
}

// as returns dsn with user (and password, when not empty).
func as(t *testing.T, dsn, user, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.User(user)
	if password != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

func allMigrations(t *testing.T) []string {
	t.Helper()
	ms, err := loadMigrations("migrations/postgres")
	require.NoError(t, err)
	var names []string
	for _, m := range ms {
		names = append(names, m.name)
	}
	return names
}

func TestMigratePostgresIsIdempotentAndLimitsTheLogins(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresSchema(t)
	ctx := t.Context()
	writer, auditor := "warden_test_w_"+testenv.RandomHex(6), "warden_test_a_"+testenv.RandomHex(6)
	dropRolesAtEnd(t, dsn, writer, auditor)
	opts := MigrateOptions{Logins: []LoginRole{
		{Name: writer, Group: WriterRole, Password: "writer-secret"},
		{Name: auditor, Group: AuditorRole, Password: "auditor-secret", Tenants: []string{"acme"}},
	}}

	first, err := MigratePostgres(ctx, dsn, opts)
	require.NoError(t, err)
	require.Equal(t, allMigrations(t), first.Applied, "a fresh schema gets every migration")
	require.EqualValues(t, len(first.Applied), first.Version)
	require.Equal(t, "postgres", first.User)
	actions := strings.Join(first.Actions, "\n")
	require.Contains(t, actions, "created login "+writer+" with the given password")
	require.Contains(t, actions, "made login "+writer+" a member of warden_audit_writer")
	require.Contains(t, actions, "created login "+auditor)
	require.Contains(t, actions, "made login "+auditor+" a member of warden_audit_auditor")
	require.Contains(t, actions, "let auditor "+auditor+" read tenant acme")
	require.NotContains(t, actions, "granted", "migration 0003 granted everything: the roles existed")

	// Run twice: nothing left to do, the same passwords are not set again.
	second, err := MigratePostgres(ctx, dsn, opts)
	require.NoError(t, err)
	require.Empty(t, second.Applied)
	require.Empty(t, second.Actions)
	require.Equal(t, first.Version, second.Version)
	// A new password is set; no password leaves it alone.
	opts.Logins[0].Password = "rotated"
	third, err := MigratePostgres(ctx, dsn, opts)
	require.NoError(t, err)
	require.Equal(t, []string{"set the password of login " + writer}, third.Actions)
	none, err := MigratePostgres(ctx, dsn, MigrateOptions{Logins: []LoginRole{{Name: writer, Group: WriterRole}}})
	require.NoError(t, err)
	require.Empty(t, none.Actions)

	// The writer login opens the store, appends and reads; it changes nothing.
	w, err := OpenPostgres(ctx, as(t, dsn, writer, ""))
	require.NoError(t, err)
	defer w.Close()
	for _, tenant := range []string{"acme", "globex"} {
		require.NoError(t, w.Append(ctx, warden.AuditEvent{ID: tenant + "-1", Type: warden.EventRunStarted, Tenant: tenant, WorkflowID: "wf-" + tenant}))
	}
	wc := pgConnect(t, as(t, dsn, writer, ""))
	_, err = wc.Exec(ctx, "INSERT INTO audit_events (event_id, event_type, tenant, workflow_id, occurred_at) VALUES ('raw', 'run_started', 'acme', 'wf-raw', now())")
	require.NoError(t, err, "the writer may INSERT")
	for _, stmt := range []string{"UPDATE audit_events SET message = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events",
		"UPDATE audit_seals SET event_count = 0", "DELETE FROM audit_seals", "TRUNCATE audit_seals",
		"INSERT INTO audit_tenant_access VALUES ('me', '*')", "DROP TABLE audit_events"} {
		_, err := wc.Exec(ctx, stmt)
		require.Error(t, err, stmt)
		require.Regexp(t, "permission denied|must be owner", err.Error(), stmt)
	}

	// The auditor login reads its tenant only, and writes nothing.
	ac := pgConnect(t, as(t, dsn, auditor, ""))
	var acme, others int
	require.NoError(t, ac.QueryRow(ctx, "SELECT count(*) FILTER (WHERE tenant = 'acme'), count(*) FILTER (WHERE tenant <> 'acme') FROM audit_events").Scan(&acme, &others))
	require.Equal(t, 2, acme)
	require.Zero(t, others)
	for _, stmt := range []string{
		"INSERT INTO audit_events (event_id, event_type, tenant, workflow_id, occurred_at) VALUES ('a', 'run_started', 'acme', 'wf-a', now())",
		"UPDATE audit_events SET message = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events",
	} {
		_, err := ac.Exec(ctx, stmt)
		require.ErrorContains(t, err, "permission denied", stmt)
	}
}

func TestMigratePostgresRestoresMissingGrantsAndPolicies(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresSchema(t)
	ctx := t.Context()
	_, err := MigratePostgres(ctx, dsn, MigrateOptions{})
	require.NoError(t, err)
	// What a schema migrated by a user who could not create the roles
	// lacks, in part.
	owner := pgConnect(t, dsn)
	_, err = owner.Exec(ctx, `REVOKE INSERT ON audit_events FROM warden_audit_writer;
		REVOKE SELECT ON audit_approvals FROM warden_audit_auditor;
		DROP POLICY audit_events_writer ON audit_events`)
	require.NoError(t, err)

	rep, err := MigratePostgres(ctx, dsn, MigrateOptions{})
	require.NoError(t, err)
	require.Empty(t, rep.Applied)
	require.Equal(t, []string{
		"granted INSERT on audit_events to warden_audit_writer",
		"granted SELECT on audit_approvals to warden_audit_auditor",
		"created row-level security policy audit_events_writer on audit_events",
	}, rep.Actions)
	rep, err = MigratePostgres(ctx, dsn, MigrateOptions{})
	require.NoError(t, err)
	require.Empty(t, rep.Actions)
}

func TestMigratePostgresRefusesAnyoneButTheOwner(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresSchema(t)
	ctx := t.Context()
	writer := "warden_test_w_" + testenv.RandomHex(6)
	dropRolesAtEnd(t, dsn, writer)
	_, err := MigratePostgres(ctx, dsn, MigrateOptions{Logins: []LoginRole{{Name: writer, Group: WriterRole}}})
	require.NoError(t, err)

	_, err = MigratePostgres(ctx, as(t, dsn, writer, ""), MigrateOptions{})
	require.ErrorContains(t, err, `user "`+writer+`" may not apply them`)
	require.ErrorContains(t, err, "run `warden audit migrate` with the owner's database URL")

	// A worker with a writer login on a schema that lags the build is told
	// the same, and nothing is changed.
	_, err = pgConnect(t, dsn).Exec(ctx, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
	require.NoError(t, err)
	_, err = OpenPostgres(ctx, as(t, dsn, writer, ""))
	require.ErrorContains(t, err, "has pending migrations")
	require.ErrorContains(t, err, "warden audit migrate")

	// Logins that would defeat the roles are refused.
	for _, l := range []LoginRole{
		{Name: "postgres", Group: WriterRole},
		{Name: WriterRole, Group: WriterRole},
		{Name: "Bad-Name", Group: WriterRole},
		{Name: "x", Group: "warden_audit_owner"},
		{Name: "x", Group: WriterRole, Tenants: []string{"acme"}},
		{Name: "x", Group: WriterRole, Password: "tab\tinside"},
	} {
		_, err := MigratePostgres(ctx, dsn, MigrateOptions{Logins: []LoginRole{l}})
		require.Error(t, err, "%+v", l)
	}
}

// On a cluster of its own that checks passwords: the roles are created
// from nothing, and the logins authenticate with SCRAM-SHA-256 using the
// verifiers computed here.
func TestMigratePostgresLoginsAuthenticateWithTheirPasswords(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPrivatePostgres(t)
	ctx := t.Context()
	dsn := pg.URL
	// Log every statement, to show that the password is not in one.
	admin := pgConnect(t, dsn)
	_, err := admin.Exec(ctx, "ALTER SYSTEM SET log_statement = 'all'")
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "SELECT pg_reload_conf()")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := admin.Exec(ctx, "SELECT 'probe-logged'")
		return err == nil && strings.Contains(pg.Log(), "probe-logged")
	}, 10*time.Second, 50*time.Millisecond)
	rep, err := MigratePostgres(ctx, dsn, MigrateOptions{Logins: []LoginRole{
		{Name: "worker", Group: WriterRole, Password: "correct horse battery staple"},
		{Name: "acme_auditor", Group: AuditorRole, Password: "auditor-pw", Tenants: []string{"acme"}},
	}})
	require.NoError(t, err)
	require.Equal(t, "public", rep.Schema)
	require.Equal(t, "created group role warden_audit_writer (NOLOGIN)", rep.Actions[0])
	require.Equal(t, "created group role warden_audit_auditor (NOLOGIN)", rep.Actions[1])
	log := pg.Log()
	require.True(t, strings.Contains(log, `CREATE ROLE "worker" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:`),
		"the statement carries a verifier")
	require.False(t, strings.Contains(log, "correct horse"), "the server never sees the password")

	require.NoError(t, pg.RequirePasswords())
	wrong := as(t, dsn, "worker", "wrong")
	require.Eventually(t, func() bool {
		conn, err := pgx.Connect(ctx, wrong)
		if err == nil {
			conn.Close(ctx)
			return false
		}
		return strings.Contains(err.Error(), "password authentication failed")
	}, 10*time.Second, 50*time.Millisecond, "a wrong password is refused once pg_hba.conf asks for passwords")

	w, err := OpenPostgres(ctx, as(t, dsn, "worker", "correct horse battery staple"))
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Append(ctx, warden.AuditEvent{ID: "e1", Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: "wf"}))
	a := pgConnect(t, as(t, dsn, "acme_auditor", "auditor-pw"))
	var n int
	require.NoError(t, a.QueryRow(ctx, "SELECT count(*) FROM audit_events").Scan(&n))
	require.Equal(t, 1, n)
	_, err = pgx.Connect(ctx, as(t, dsn, "acme_auditor", ""))
	require.Error(t, err, "no password, no login")

	// A verifier given instead of the password is stored as it is.
	v, err := scramSHA256("via-verifier")
	require.NoError(t, err)
	_, err = MigratePostgres(ctx, dsn, MigrateOptions{Logins: []LoginRole{{Name: "worker", Group: WriterRole, Password: v}}})
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, as(t, dsn, "worker", "via-verifier"))
	require.NoError(t, err)
	conn.Close(ctx)
}
