package audit

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/testenv"
)

// loginRole creates a login role that is a member of group and returns dsn
// rewritten to connect as it; the role is dropped when the test ends.
func loginRole(t *testing.T, dsn, group string) (string, string) {
	t.Helper()
	name := "warden_test_" + testenv.RandomHex(6)
	admin := pgConnect(t, dsn)
	_, err := admin.Exec(t.Context(), "CREATE ROLE "+name+" LOGIN IN ROLE "+group)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP ROLE IF EXISTS "+name)
		require.NoError(t, err)
	})
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.User(name)
	return u.String(), name
}

// rolesFixture is a migrated schema with events and seals of two tenants.
func rolesFixture(t *testing.T) string {
	t.Helper()
	dsn := testenv.PostgresSchema(t)
	owner := postgresBackend.openAt(t, dsn)
	ctx := t.Context()
	for _, tenant := range []string{"acme", "globex"} {
		for i := range 3 {
			require.NoError(t, owner.Append(ctx, warden.AuditEvent{ID: tenant + "-" + string(rune('0'+i)), Type: warden.EventToolExecuted,
				Tenant: tenant, WorkflowID: "wf-" + tenant, Step: i, Args: []byte(`{"order":"1234"}`)}))
		}
	}
	_, err := owner.Seal(ctx, "")
	require.NoError(t, err)
	return dsn
}

func TestPostgresWriterRole(t *testing.T) {
	t.Parallel()
	dsn := rolesFixture(t)
	writerDSN, _ := loginRole(t, dsn, "warden_audit_writer")
	ctx := t.Context()

	// The worker's role opens the migrated store, appends (linking the
	// chain), seals and verifies.
	w, err := OpenPostgres(ctx, writerDSN)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Append(ctx, warden.AuditEvent{ID: "acme-3", Type: warden.EventToolExecuted, Tenant: "acme", WorkflowID: "wf-acme"}))
	// The second append checks the head the writer remembers (a function
	// the writer may call) instead of reading it.
	require.NoError(t, w.Append(ctx, warden.AuditEvent{ID: "acme-4", Type: warden.EventRunFinished, Tenant: "acme", WorkflowID: "wf-acme"}))
	seals, err := w.Seal(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, seals, 1)
	report, err := Verify(ctx, w, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.EqualValues(t, 8, report.Events)

	// Changing anything is refused by privilege, before any trigger.
	conn := pgConnect(t, writerDSN)
	for _, stmt := range []string{
		"UPDATE audit_events SET message = 'x'",
		"DELETE FROM audit_events",
		"TRUNCATE audit_events",
		"UPDATE audit_seals SET event_count = 0",
		"DELETE FROM audit_seals",
		"INSERT INTO audit_tenant_access VALUES ('me', '*')",
		"ALTER TABLE audit_events DISABLE TRIGGER USER",
		// The retention path's transaction-local guard setting does not
		// give the writer a DELETE it has no privilege for.
		"BEGIN; SELECT set_config('warden.audit_retention', 'acme', true); DELETE FROM audit_events WHERE tenant = 'acme'; COMMIT",
		"ALTER TABLE audit_seals ADD COLUMN x int",
	} {
		_, err := conn.Exec(ctx, stmt)
		require.Error(t, err, stmt)
		require.Regexp(t, "permission denied|must be owner", err.Error(), stmt)
		_, _ = conn.Exec(ctx, "ROLLBACK")
	}
	// Retention is the owner's: the writer is told whom to connect as, and
	// nothing is dropped or sealed.
	_, err = w.Retain(ctx, RetainOptions{Tenant: "acme", Before: time.Now()})
	require.ErrorContains(t, err, "permission denied")
	require.ErrorContains(t, err, "connect as the owner of the audit schema")
	report, err = Verify(ctx, w, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.EqualValues(t, 8, report.Events)

	// The owner's plain DELETE, outside Retain, is refused by the trigger.
	owner := pgConnect(t, dsn)
	_, err = owner.Exec(ctx, "DELETE FROM audit_events WHERE tenant = 'acme'")
	require.ErrorContains(t, err, "append-only")
	// No setting lifts the guard any more (migration 0006's did).
	_, err = owner.Exec(ctx, "BEGIN; SELECT set_config('warden.audit_retention', 'acme', true); DELETE FROM audit_events WHERE tenant = 'acme'; COMMIT")
	require.ErrorContains(t, err, "append-only")
	_, _ = owner.Exec(ctx, "ROLLBACK")
	// A retention seal of another transaction does not open the guard, and
	// one written in this transaction opens it only for the runs it lists.
	_, err = owner.Exec(ctx, `BEGIN;
		INSERT INTO audit_seals (tenant, seal_index, kind, from_seq, to_seq, event_count, heads, sealed_at, prev_hash, hash, retention)
		VALUES ('acme', 99, 'retention', 0, 0, 0, '[]', now(), '', 'forged-seal', '{"chains":[{"workflow_id":"wf-other","first_seq":1,"last_seq":1000}]}');
		DELETE FROM audit_events WHERE tenant = 'acme' AND workflow_id = 'wf-acme'; COMMIT`)
	require.ErrorContains(t, err, "not in the runs this transaction's retention seal lists")
	_, _ = owner.Exec(ctx, "ROLLBACK")
	report, err = Verify(ctx, w, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.EqualValues(t, 8, report.Events, "nothing was deleted")
	owned, err := OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer owned.Close()
	seal, err := owned.Retain(ctx, RetainOptions{Tenant: "acme", Before: time.Now(), Actor: "owner"})
	require.NoError(t, err)
	require.EqualValues(t, 5, seal.Retention.Events)
	report, err = Verify(ctx, w, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.EqualValues(t, 3, report.Events)
}

func TestPostgresAuditorRoleSeesOnlyItsTenants(t *testing.T) {
	t.Parallel()
	dsn := rolesFixture(t)
	ctx := t.Context()
	acmeDSN, acmeRole := loginRole(t, dsn, "warden_audit_auditor")
	allDSN, allRole := loginRole(t, dsn, "warden_audit_auditor")
	noneDSN, _ := loginRole(t, dsn, "warden_audit_auditor")
	admin := pgConnect(t, dsn)
	_, err := admin.Exec(ctx, "INSERT INTO audit_tenant_access VALUES ($1, 'acme'), ($2, '*')", acmeRole, allRole)
	require.NoError(t, err)

	tenants := func(s Store) map[string]int {
		t.Helper()
		got, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		out := map[string]int{}
		for _, e := range got {
			out[e.Tenant]++
		}
		return out
	}

	acme, err := OpenPostgres(ctx, acmeDSN)
	require.NoError(t, err)
	defer acme.Close()
	require.Equal(t, map[string]int{"acme": 3}, tenants(acme))
	seals, err := acme.Seals(ctx, "")
	require.NoError(t, err)
	require.Len(t, seals, 1)
	require.Equal(t, "acme", seals[0].Tenant)
	// Its tenant verifies completely, seals included.
	report, err := Verify(ctx, acme, VerifyOptions{Tenant: "acme"})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.Equal(t, 1, report.Seals)
	// Asking for another tenant finds nothing, not an error.
	got, err := acme.Query(ctx, warden.AuditFilter{Tenant: "globex"})
	require.NoError(t, err)
	require.Empty(t, got)
	// An auditor writes nothing.
	require.ErrorContains(t, acme.Append(ctx, warden.AuditEvent{ID: "x", Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: "wf-x"}), "permission denied")
	conn := pgConnect(t, acmeDSN)
	for _, stmt := range []string{
		"UPDATE audit_events SET message = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events",
		"INSERT INTO audit_tenant_access VALUES ('me', '*')",
	} {
		_, err := conn.Exec(ctx, stmt)
		require.ErrorContains(t, err, "permission denied", stmt)
	}
	// The documented views apply its row-level security too.
	var approvals, calls int
	require.NoError(t, conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM audit_approvals), (SELECT count(DISTINCT tenant) FROM audit_tool_calls)").Scan(&approvals, &calls))
	require.Zero(t, approvals)
	require.Zero(t, calls)
	// It sees its own grant only.
	var grants int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM audit_tenant_access").Scan(&grants))
	require.Equal(t, 1, grants)

	all, err := OpenPostgres(ctx, allDSN)
	require.NoError(t, err)
	defer all.Close()
	require.Equal(t, map[string]int{"acme": 3, "globex": 3}, tenants(all))

	none, err := OpenPostgres(ctx, noneDSN)
	require.NoError(t, err)
	defer none.Close()
	require.Empty(t, tenants(none))
}

func TestPostgresRolesMigrationIsIdempotentAcrossSchemas(t *testing.T) {
	t.Parallel()
	// Roles are global: many schemas migrating at once must all succeed.
	errs := make(chan error, 4)
	for range 4 {
		dsn := testenv.PostgresSchema(t)
		go func() {
			s, err := OpenPostgres(t.Context(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
}
