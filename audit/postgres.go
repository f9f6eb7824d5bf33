package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardenhq/warden"
)

// Postgres is the production action log, in the audit_events table of the
// schema the connection's search_path selects.
type Postgres struct {
	pool *pgxpool.Pool
}

const (
	// defaultConnectTimeout bounds each new connection when the database URL
	// sets no connect_timeout, so an unreachable server fails an Append
	// instead of hanging it.
	defaultConnectTimeout = 10 * time.Second
	// pgRowsPerStatement keeps one INSERT under Postgres's 65535 bind
	// parameters.
	pgRowsPerStatement = 1000
	// pgAppendAttempts is how often Append tries a batch that hit a
	// deadlock or serialization failure (safe: the insert is idempotent).
	// Concurrent batches holding the same IDs in different orders deadlock;
	// Postgres aborts one of them after deadlock_timeout.
	pgAppendAttempts = 5
)

// OpenPostgres connects to the database at dsn (a postgres:// URL or
// key=value string; a search_path parameter selects the schema), applies the
// migrations under an advisory lock and returns the store.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres audit store: parse database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres audit store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres audit store: check the database URL and that Postgres is running: %w", err)
	}
	p := &Postgres{pool: pool}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres audit store: %w", err)
	}
	return p, nil
}

// migrate applies the pending migrations. A session advisory lock keyed by
// the schema makes concurrent openers (several workers starting at once)
// take turns; each migration runs in its own transaction.
func (p *Postgres) migrate(ctx context.Context) error {
	migrations, err := loadMigrations("migrations/postgres")
	if err != nil {
		return err
	}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var schema *string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		conn.Release()
		return fmt.Errorf("migrate: read current schema: %w", err)
	}
	if schema == nil {
		conn.Release()
		return errors.New("migrate: search_path names no existing schema: create the schema or fix search_path in the database URL")
	}
	key := migrationLockKey(*schema)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		conn.Release()
		return fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			// Closing the session releases its locks.
			_ = conn.Hijack().Close(uctx)
			return
		}
		conn.Release()
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    bigint      PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := map[int64]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	for _, v := range versions {
		applied[v] = true
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
	}
	return nil
}

// migrationLockKey is the advisory lock key of schema's migrations.
func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("warden/audit/migrations\x00" + schema))
	return int64(h.Sum64())
}

// Append implements Store.
func (p *Postgres) Append(ctx context.Context, events ...warden.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	events, err := prepare(events)
	if err != nil {
		return fmt.Errorf("append audit events: %w", err)
	}
	for attempt := 1; ; attempt++ {
		err = p.insert(ctx, events)
		if err == nil {
			return nil
		}
		if attempt == pgAppendAttempts || !retryable(err) {
			return fmt.Errorf("append audit events: %w", err)
		}
		// A jittered pause lets the surviving transaction commit first.
		pause := time.Duration(attempt) * (10*time.Millisecond + rand.N(20*time.Millisecond))
		select {
		case <-ctx.Done():
			return fmt.Errorf("append audit events: %w", err)
		case <-time.After(pause):
		}
	}
}

// insert writes events in one transaction: a single multi-row statement for
// up to pgRowsPerStatement events (one round trip), an explicit transaction
// beyond.
func (p *Postgres) insert(ctx context.Context, events []warden.AuditEvent) error {
	if len(events) <= pgRowsPerStatement {
		return pgInsertChunk(ctx, p.pool, events)
	}
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		for chunk := range chunks(events, pgRowsPerStatement) {
			if err := pgInsertChunk(ctx, tx, chunk); err != nil {
				return err
			}
		}
		return nil
	})
}

// pgExecer is what pgInsertChunk runs on: the pool or a transaction.
type pgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func pgInsertChunk(ctx context.Context, db pgExecer, events []warden.AuditEvent) error {
	var b strings.Builder
	b.WriteString("INSERT INTO audit_events (" + columns + ") VALUES ")
	args := make([]any, 0, len(events)*columnCount)
	for i, e := range events {
		values, err := insertValues(e, e.OccurredAt)
		if err != nil {
			return err
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range values {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(len(args)+j+1))
		}
		b.WriteByte(')')
		args = append(args, values...)
	}
	b.WriteString(" ON CONFLICT (event_id) DO NOTHING")
	_, err := db.Exec(ctx, b.String(), args...)
	return err
}

// chunks yields s in consecutive pieces of at most n elements.
func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// retryable reports whether err is a transient conflict between concurrent
// transactions (deadlock or serialization failure).
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001"
	}
	return false
}

// Query implements Store.
func (p *Postgres) Query(ctx context.Context, f warden.AuditFilter) ([]warden.AuditEvent, error) {
	limit, err := queryLimit(f.Limit)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	where, args := whereClause(f, limit,
		func(n int) string { return "$" + strconv.Itoa(n) },
		func(t time.Time) any { return t })
	rows, err := p.pool.Query(ctx, "SELECT "+selectColumns+" FROM audit_events"+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	defer rows.Close()
	var (
		out        []warden.AuditEvent
		s          scanned
		occurredAt time.Time
	)
	for rows.Next() {
		s = scanned{}
		if err := rows.Scan(s.dest(&occurredAt)...); err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		e, err := s.finish()
		if err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		e.OccurredAt = occurredAt.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	return out, nil
}

// Has implements Store.
func (p *Postgres) Has(ctx context.Context, eventID string) (bool, error) {
	var ok bool
	err := p.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM audit_events WHERE event_id = $1)", eventID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up audit event %s: %w", eventID, err)
	}
	return ok, nil
}

// Close implements Store.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}
