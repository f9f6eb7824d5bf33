// Package testenv gives Warden's tests the real parts they run against: a
// Temporal dev server (the CLI built once per machine) and a throwaway
// schema in the PostgreSQL every machine of this project runs. Tests fail,
// never skip, when either is missing: CI must not go green without them.
package testenv

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"

	"github.com/wardenhq/warden/internal/devserver"
)

// DefaultDatabaseURL is the test Postgres; WARDEN_TEST_DATABASE_URL overrides it.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DatabaseURL is the test Postgres's base URL.
func DatabaseURL() string {
	return cmp.Or(os.Getenv("WARDEN_TEST_DATABASE_URL"), DefaultDatabaseURL)
}

// PostgresSchema creates a throwaway schema, drops it when the test ends,
// and returns a database URL whose search_path selects it.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := DatabaseURL()
	schema := "warden_test_" + RandomHex(8)
	exec := func(sql string) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		require.NoError(t, err, "PostgreSQL must be reachable at %s (set WARDEN_TEST_DATABASE_URL)", base)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	exec("CREATE SCHEMA " + schema)
	t.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	return WithSearchPath(t, base, schema)
}

// WithSearchPath adds a search_path runtime parameter to a database URL or
// a key=value connection string.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// DevServer starts a Temporal dev server for the test and stops it at the end.
func DevServer(t testing.TB) *devserver.Server {
	t.Helper()
	return startDevServer(t, false)
}

// DevServerWithUI is DevServer with the Web UI on a free port (Server.UIAddress).
func DevServerWithUI(t testing.TB) *devserver.Server {
	t.Helper()
	return startDevServer(t, true)
}

func startDevServer(t testing.TB, ui bool) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		EnableUI: ui,
		Logger:   QuietLogger(),
		Stdout:   io.Discard,
		Stderr:   io.Discard,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// QuietLogger is a Temporal logger that only reports warnings and errors.
func QuietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// RandomHex returns n random bytes in hex, for unique names.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
