package audit

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func sqliteConnect(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

var sqliteBackend = backend{
	newDB: func(t testing.TB) string { return filepath.Join(t.TempDir(), "audit", "audit.db") },
	open: func(ctx context.Context, path string) (Store, error) {
		return OpenSQLite(ctx, path)
	},
	exec: func(t testing.TB, path, query string) error {
		_, err := sqliteConnect(t, path).ExecContext(t.Context(), query)
		return err
	},
	count: func(t testing.TB, path, query string) int64 {
		var n int64
		require.NoError(t, sqliteConnect(t, path).QueryRowContext(t.Context(), query).Scan(&n))
		return n
	},
	superuser: func(t testing.TB, path, query string) {
		t.Helper()
		// Whoever can write the file can drop the triggers.
		_, err := sqliteConnect(t, path).ExecContext(t.Context(), "DROP TRIGGER IF EXISTS audit_events_no_update; "+
			"DROP TRIGGER IF EXISTS audit_events_no_delete; DROP TRIGGER IF EXISTS audit_seals_no_update; "+
			"DROP TRIGGER IF EXISTS audit_seals_no_delete; "+query)
		require.NoError(t, err, query)
	},
}

func TestSQLiteConformance(t *testing.T) {
	t.Parallel()
	runConformance(t, sqliteBackend)
}

func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	s, path := sqliteBackend.fresh(t)
	var mode string
	require.NoError(t, s.(*SQLite).db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "wal", mode)
	var timeout int
	require.NoError(t, s.(*SQLite).db.QueryRowContext(t.Context(), "PRAGMA busy_timeout").Scan(&timeout))
	require.Positive(t, timeout)
	require.FileExists(t, path)
}

func TestOpenSQLiteBadPath(t *testing.T) {
	t.Parallel()
	_, err := OpenSQLite(t.Context(), "")
	require.ErrorContains(t, err, "file path")
	_, err = OpenSQLite(t.Context(), ":memory:")
	require.ErrorContains(t, err, "file path")

	// The parent "directory" is a file.
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	_, err = OpenSQLite(t.Context(), filepath.Join(blocker, "audit.db"))
	require.ErrorContains(t, err, "create directory")
}

func TestOpenSQLiteOddPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "with space?and#hash%41", "audit.db")
	s, err := OpenSQLite(t.Context(), path)
	require.NoError(t, err)
	require.NoError(t, s.Append(t.Context(), sampleEvents(1)...))
	require.NoError(t, s.Close())
	require.FileExists(t, path)
}
