package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/wardenhq/warden"
)

// SQLite is the embedded action log: a single database file, for
// development and single-node deployments.
type SQLite struct {
	db *sql.DB
	// insert, head and exists are prepared once (preparing is most of a
	// small append's cost); each Append runs them in its transaction.
	insert, head, exists *sql.Stmt
	// writeMu serializes this process's appends, so they queue in Go rather
	// than poll SQLite's busy handler. busy_timeout still covers other
	// processes writing the same file.
	writeMu sync.Mutex
	// pending holds appends waiting for writeMu; whoever gets it next
	// writes all of them in one transaction (group commit: one fsync for
	// many concurrent runs).
	pendMu  sync.Mutex
	pending []appendRequest
	// signerSlot signs seals (SetSealSigner).
	signerSlot
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
	// Switching a new file to WAL takes an exclusive lock and does not wait
	// on the busy timeout, so openers racing on a fresh file retry briefly.
	for attempt := 1; ; attempt++ {
		err = db.PingContext(ctx)
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "SQLITE_BUSY") {
			break
		}
		time.Sleep(time.Duration(attempt) * 25 * time.Millisecond)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite audit store %s: %w", abs, err)
	}
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite audit store %s: %w", abs, err)
	}
	s.insert, err = db.PrepareContext(ctx, "INSERT INTO audit_events ("+chainColumns+") VALUES "+
		"(?"+strings.Repeat(", ?", chainColumnCount-1)+")")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite audit store %s: prepare insert: %w", abs, err)
	}
	if s.head, err = db.PrepareContext(ctx, "SELECT hash FROM audit_events WHERE tenant = ? AND workflow_id = ? ORDER BY seq DESC LIMIT 1"); err == nil {
		s.exists, err = db.PrepareContext(ctx, "SELECT EXISTS (SELECT 1 FROM audit_events WHERE event_id = ?)")
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite audit store %s: prepare queries: %w", abs, err)
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
	req, ok, err := newAppendRequest(ctx, events)
	if !ok {
		return err
	}
	s.pendMu.Lock()
	s.pending = append(s.pending, req)
	s.pendMu.Unlock()
	// Either an earlier holder of writeMu already wrote req (its done is
	// filled), or req is still pending and this caller writes it, with
	// whatever else queued meanwhile.
	s.writeMu.Lock()
	s.pendMu.Lock()
	group := s.pending
	s.pending = nil
	s.pendMu.Unlock()
	if len(group) > 0 {
		s.commitGroup(ctx, group)
	}
	s.writeMu.Unlock()
	return <-req.done
}

// sqliteGroupTimeout bounds one group commit (a caller's own context only
// bounds its own events when the group falls back to one by one).
const sqliteGroupTimeout = 30 * time.Second

// commitGroup writes group (the shared commitGroup), every write under
// one deadline derived from the writer's context: the writer's own
// cancellation must not fail the others' events. Called with writeMu
// held.
func (s *SQLite) commitGroup(ctx context.Context, group []appendRequest) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sqliteGroupTimeout)
	defer cancel()
	commitGroup(group, func(_ context.Context, events []warden.AuditEvent) error {
		if err := s.insertAll(ctx, events); err != nil {
			return fmt.Errorf("append audit events: %w", err)
		}
		return nil
	})
}

// insertAll links events into their chains and inserts them in one
// immediate transaction, which holds the database's write lock from BEGIN:
// heads read inside it cannot move.
func (s *SQLite) insertAll(ctx context.Context, events []warden.AuditEvent) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	heads := map[chainKey]string{}
	head, exists := tx.StmtContext(ctx, s.head), tx.StmtContext(ctx, s.exists)
	for _, k := range chainKeys(events) {
		var h string
		err := head.QueryRowContext(ctx, k.tenant, k.workflowID).Scan(&h)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read chain head: %w", err)
		}
		heads[k] = h
	}
	existing := map[string]bool{}
	for _, e := range events {
		var ok bool
		if err := exists.QueryRowContext(ctx, e.ID).Scan(&ok); err != nil {
			return fmt.Errorf("look up %s: %w", e.ID, err)
		}
		existing[e.ID] = ok
	}
	// From hash version 2 the seq is hashed, so it is chosen here (the
	// transaction is the only writer once it writes) instead of by
	// AUTOINCREMENT: past the largest ever used, as AUTOINCREMENT would.
	var next int64
	if err := tx.QueryRowContext(ctx, `SELECT max(coalesce((SELECT max(seq) FROM audit_events), 0),
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'), 0)) + 1`).Scan(&next); err != nil {
		return fmt.Errorf("next seq: %w", err)
	}
	seqs := make([]int64, len(events))
	for i := range seqs {
		seqs[i] = next + int64(i)
	}
	fresh, err := link(events, heads, existing, seqs, time.Now())
	if err != nil {
		return err
	}
	stmt := tx.StmtContext(ctx, s.insert)
	for _, e := range fresh {
		values, err := chainValues(e, func(t time.Time) any { return t.UTC().Format(sqliteTimeLayout) })
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, values...); err != nil {
			return fmt.Errorf("insert %s: %w", e.ID, err)
		}
	}
	return tx.Commit()
}

// Seal implements Store (sealAll), holding writeMu: no append of this
// process is in flight.
func (s *SQLite) Seal(ctx context.Context, tenant string) ([]Seal, error) {
	return sealAll(ctx, s, tenant)
}

// sqlQueryer is a *sql.DB or *sql.Tx.
type sqlQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func querySeals(ctx context.Context, db sqlQueryer, where string, args ...any) ([]Seal, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+sealColumns+" FROM audit_seals"+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Seal
	for rows.Next() {
		var (
			seal          Seal
			heads, sealed string
			retention     sql.NullString
		)
		if err := rows.Scan(&seal.Tenant, &seal.Index, &seal.Kind, &seal.FromSeq, &seal.ToSeq, &seal.EventCount,
			&heads, &sealed, &seal.PrevHash, &seal.Hash, &retention, &seal.KeyID, &seal.Signature); err != nil {
			return nil, err
		}
		if seal.Retention, err = decodeRetention([]byte(retention.String)); err != nil {
			return nil, fmt.Errorf("retention record of seal %s #%d: %w", seal.Tenant, seal.Index, err)
		}
		if seal.SealedAt, err = time.Parse(time.RFC3339Nano, sealed); err != nil {
			return nil, fmt.Errorf("sealed_at of seal %s #%d: %w", seal.Tenant, seal.Index, err)
		}
		if err := json.Unmarshal([]byte(heads), &seal.Heads); err != nil {
			return nil, fmt.Errorf("heads of seal %s #%d: %w", seal.Tenant, seal.Index, err)
		}
		out = append(out, seal)
	}
	return out, rows.Err()
}

// Seals implements Store.
func (s *SQLite) Seals(ctx context.Context, tenant string) ([]Seal, error) {
	seals, err := querySeals(ctx, s.db, " WHERE ? = '' OR tenant = ? ORDER BY tenant, seal_index", tenant, tenant)
	if err != nil {
		return nil, fmt.Errorf("read seals: %w", err)
	}
	return seals, nil
}

// Query implements Store.
func (s *SQLite) Query(ctx context.Context, f warden.AuditFilter) ([]warden.AuditEvent, error) {
	limit, err := queryLimit(f.Limit)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	where, args := whereClause(f, limit,
		func(int) string { return "?" },
		func(t time.Time) any { return t.Format(sqliteTimeLayout) }, "LIKE", func(c string) string { return c })
	rows, err := s.db.QueryContext(ctx, "SELECT "+selectColumns+" FROM audit_events"+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	defer rows.Close()
	return scanEvents(rows, func(e *warden.AuditEvent, occurredAt, recordedAt string) error {
		var err error
		if e.OccurredAt, err = time.Parse(time.RFC3339Nano, occurredAt); err != nil {
			return fmt.Errorf("occurred_at of event %s: %w", e.ID, err)
		}
		if e.RecordedAt, err = time.Parse(time.RFC3339Nano, recordedAt); err != nil {
			return fmt.Errorf("recorded_at of event %s: %w", e.ID, err)
		}
		return nil
	})
}

// Has implements Store.
func (s *SQLite) Has(ctx context.Context, eventID string) (bool, error) {
	var ok bool
	err := s.exists.QueryRowContext(ctx, eventID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up audit event %s: %w", eventID, err)
	}
	return ok, nil
}

// Close implements Store.
func (s *SQLite) Close() error {
	s.insert.Close()
	s.head.Close()
	s.exists.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close sqlite audit store: %w", err)
	}
	return nil
}
