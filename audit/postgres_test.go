package audit

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/internal/testenv"
)

func pgConnect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

var postgresBackend = backend{
	newDB: testenv.PostgresSchema,
	open: func(ctx context.Context, dsn string) (Store, error) {
		return OpenPostgres(ctx, dsn)
	},
	exec: func(t testing.TB, dsn, sql string) error {
		_, err := pgConnect(t, dsn).Exec(t.Context(), sql)
		return err
	},
	count: func(t testing.TB, dsn, sql string) int64 {
		var n int64
		require.NoError(t, pgConnect(t, dsn).QueryRow(t.Context(), sql).Scan(&n))
		return n
	},
	truncate: true,
	superuser: func(t testing.TB, dsn, sql string) {
		t.Helper()
		// session_replication_role = replica skips ordinary triggers: only
		// a superuser may set it.
		_, err := pgConnect(t, dsn).Exec(t.Context(), "SET session_replication_role = replica; "+sql)
		require.NoError(t, err, sql)
	},
}

func TestPostgresConformance(t *testing.T) {
	t.Parallel()
	runConformance(t, postgresBackend)
}

func TestPostgresSchemaIsolation(t *testing.T) {
	t.Parallel()
	a, _ := postgresBackend.fresh(t)
	b, _ := postgresBackend.fresh(t)
	require.NoError(t, a.Append(t.Context(), sampleEvents(2)...))
	ok, err := b.Has(t.Context(), "evt-0")
	require.NoError(t, err)
	require.False(t, ok, "a store sees only its own schema")
}

func TestPostgresMigrationObjectsInCurrentSchema(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresSchema(t)
	postgresBackend.openAt(t, dsn)
	conn := pgConnect(t, dsn)
	var schema string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema))
	var fn, tables int
	require.NoError(t, conn.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = 'audit_events_reject_change'",
		schema).Scan(&fn))
	require.Equal(t, 1, fn, "trigger function lives in the store's schema")
	require.NoError(t, conn.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('audit_events', 'schema_migrations')",
		schema).Scan(&tables))
	require.Equal(t, 2, tables)
}

func TestOpenPostgresUnreachable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := OpenPostgres(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	require.Error(t, err)
	require.ErrorContains(t, err, "open postgres audit store")
	require.Less(t, time.Since(start), 5*time.Second)

	// A context deadline bounds the attempt too, even without connect_timeout
	// (10.255.255.1 is unroutable here, so the dial would hang).
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = OpenPostgres(ctx, "postgres://postgres@10.255.255.1:5432/test?sslmode=disable")
	require.Error(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestOpenPostgresBadInput(t *testing.T) {
	t.Parallel()
	_, err := OpenPostgres(t.Context(), "postgres://%zz")
	require.ErrorContains(t, err, "parse database URL")

	dsn := testenv.WithSearchPath(t, testenv.DatabaseURL(), "warden_test_no_such_schema")
	_, err = OpenPostgres(t.Context(), dsn)
	require.ErrorContains(t, err, "search_path")
}

func TestOpenChoosesBackend(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, err := Open(ctx, "", "")
	require.ErrorContains(t, err, "database URL")

	s, err := Open(ctx, testenv.PostgresSchema(t), "ignored.db")
	require.NoError(t, err)
	require.IsType(t, &Postgres{}, s)
	require.NoError(t, s.Close())

	s, err = Open(ctx, "", t.TempDir()+"/nested/dir/audit.db")
	require.NoError(t, err)
	require.IsType(t, &SQLite{}, s)
	require.NoError(t, s.Close())
}
