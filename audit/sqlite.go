package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/wardenhq/warden"
)

// SQLite is the embedded action log: a single database file, for
// development and single-node deployments.
type SQLite struct {
	db *sql.DB
	// insert is prepared once; each Append runs it in its transaction.
	insert *sql.Stmt
	// writeMu serializes this process's appends, so they queue in Go rather
	// than poll SQLite's busy handler. busy_timeout still covers other
	// processes writing the same file.
	writeMu sync.Mutex
}

// sqliteTimeLayout stores times as UTC RFC 3339 with a fixed-width
// microsecond fraction, so comparing the text compares the times.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// OpenSQLite opens (creating it and its parent directory if needed) the
// database file at path, in WAL mode with a busy timeout, and applies the
// migrations.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" || path == ":memory:" {
		return nil, errors.New("open sqlite audit store: give a database file path (an in-memory database would lose the log)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite audit store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite audit store: create directory: %w", err)
	}
	params := url.Values{}
	// busy_timeout is applied first by the driver; synchronous=FULL makes a
	// committed append survive power loss, not just a process crash.
	params.Add("_pragma", "busy_timeout(10000)")
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "synchronous(FULL)")
	// Write transactions take the write lock at BEGIN, so two writers never
	// deadlock upgrading a read lock.
	params.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: params.Encode()}).String()

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite audit store %s: %w", abs, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite audit store %s: %w", abs, err)
	}
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite audit store %s: %w", abs, err)
	}
	s.insert, err = db.PrepareContext(ctx, "INSERT INTO audit_events ("+columns+") VALUES "+
		"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite audit store %s: prepare insert: %w", abs, err)
	}
	return s, nil
}

// migrate applies the pending migrations, each in an immediate (write-locked)
// transaction that first re-checks it is still pending, so concurrent
// openers of one file take turns.
func (s *SQLite) migrate(ctx context.Context) error {
	migrations, err := loadMigrations("migrations/sqlite")
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if err := s.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
	}
	return nil
}

func (s *SQLite) applyMigration(ctx context.Context, m migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var applied bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)", m.version).Scan(&applied); err != nil {
		return err
	}
	if applied {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version) VALUES (?)", m.version); err != nil {
		return err
	}
	return tx.Commit()
}

// Append implements Store.
func (s *SQLite) Append(ctx context.Context, events ...warden.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	events, err := prepare(events)
	if err != nil {
		return fmt.Errorf("append audit events: %w", err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.insertAll(ctx, events); err != nil {
		return fmt.Errorf("append audit events: %w", err)
	}
	return nil
}

func (s *SQLite) insertAll(ctx context.Context, events []warden.AuditEvent) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, s.insert)
	for _, e := range events {
		values, err := insertValues(e, e.OccurredAt.Format(sqliteTimeLayout))
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, values...); err != nil {
			return fmt.Errorf("insert %s: %w", e.ID, err)
		}
	}
	return tx.Commit()
}

// Query implements Store.
func (s *SQLite) Query(ctx context.Context, f warden.AuditFilter) ([]warden.AuditEvent, error) {
	limit, err := queryLimit(f.Limit)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	where, args := whereClause(f, limit,
		func(int) string { return "?" },
		func(t time.Time) any { return t.Format(sqliteTimeLayout) })
	rows, err := s.db.QueryContext(ctx, "SELECT "+selectColumns+" FROM audit_events"+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	defer rows.Close()
	var (
		out        []warden.AuditEvent
		sc         scanned
		occurredAt string
	)
	for rows.Next() {
		sc = scanned{}
		if err := rows.Scan(sc.dest(&occurredAt)...); err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		e, err := sc.finish()
		if err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		if e.OccurredAt, err = time.Parse(time.RFC3339Nano, occurredAt); err != nil {
			return nil, fmt.Errorf("query audit events: occurred_at of event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	return out, nil
}

// Has implements Store.
func (s *SQLite) Has(ctx context.Context, eventID string) (bool, error) {
	var ok bool
	err := s.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM audit_events WHERE event_id = ?)", eventID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up audit event %s: %w", eventID, err)
	}
	return ok, nil
}

// Close implements Store.
func (s *SQLite) Close() error {
	s.insert.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close sqlite audit store: %w", err)
	}
	return nil
}
