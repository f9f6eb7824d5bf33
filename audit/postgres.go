package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardenhq/warden"
)

// Postgres is the production action log, in the audit_events table of the
// schema the connection's search_path selects.
type Postgres struct {
	pool *pgxpool.Pool
	// schema is the store's schema; it scopes the advisory lock keys.
	schema string
	// queues feed appends to the group-commit goroutines, one queue per
	// committer; an append goes to the queue its first chain hashes to.
	queues     []chan appendRequest
	committers sync.WaitGroup
	// mu guards closed (and the queue against sends after Close).
	mu     sync.RWMutex
	closed bool
	// signerSlot signs seals (SetSealSigner).
	signerSlot
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
	pool, err := newPool(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres audit store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres audit store: check the database URL and that Postgres is running: %w", err)
	}
	p := &Postgres{pool: pool}
	if _, err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres audit store: %w", err)
	}
	// Each committer holds a connection while it commits; leave half the
	// pool to queries and seals.
	n := min(pgMaxCommitters, max(1, int(pool.Config().MaxConns)/2))
	p.queues = make([]chan appendRequest, n)
	for i := range p.queues {
		c := &committer{p: p, queue: make(chan appendRequest), heads: map[chainKey]string{}}
		p.queues[i] = c.queue
		p.committers.Go(c.run)
	}
	return p, nil
}

// newPool returns a pool of connections to dsn, each bounded by
// defaultConnectTimeout unless dsn sets connect_timeout.
func newPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// migrate applies the pending migrations and returns the names of those it
// applied. A session advisory lock keyed by the schema makes concurrent
// openers (several workers starting at once) take turns; each migration
// runs in its own transaction. A user who may not change the schema (the
// writer and auditor logins) opens an up-to-date store and is told to run
// `warden audit migrate` as the owner when migrations are pending.
func (p *Postgres) migrate(ctx context.Context) ([]string, error) {
	migrations, err := loadMigrations("migrations/postgres")
	if err != nil {
		return nil, err
	}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var schema *string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		conn.Release()
		return nil, fmt.Errorf("migrate: read current schema: %w", err)
	}
	if schema == nil {
		conn.Release()
		return nil, errors.New("migrate: search_path names no existing schema: create the schema or fix search_path in the database URL")
	}
	p.schema = *schema
	if p.migrated(ctx, conn, migrations) {
		// Nothing to do: roles without DDL rights (writer, auditor) open
		// the store too.
		conn.Release()
		return nil, nil
	}
	if err := mayMigrate(ctx, conn.Conn(), *schema); err != nil {
		conn.Release()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	key := migrationLockKey(*schema)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		conn.Release()
		return nil, fmt.Errorf("migrate: take advisory lock: %w", err)
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
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := map[int64]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	for _, v := range versions {
		applied[v] = true
	}
	var done []string
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
			return done, fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
		done = append(done, m.name)
	}
	return done, nil
}

// mayMigrate reports, as an error naming the fix, when the session's user
// may not change the audit schema: it needs CREATE on the schema and, once
// the tables exist, to own them (or be a superuser).
func mayMigrate(ctx context.Context, conn *pgx.Conn, schema string) error {
	var user string
	var create, owner bool
	err := conn.QueryRow(ctx, `SELECT current_user, has_schema_privilege(current_schema(), 'CREATE'),
		coalesce((SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass('audit_events')), true)`).
		Scan(&user, &create, &owner)
	if err != nil {
		return fmt.Errorf("check the right to migrate: %w", err)
	}
	if create && owner {
		return nil
	}
	return fmt.Errorf("the audit schema %q has pending migrations and user %q may not apply them (it does not own the schema's tables): "+
		"run `warden audit migrate` with the owner's database URL first (docs/runbook.md, \"Database roles and migrations\")", schema, user)
}

// migrated reports whether every migration is recorded as applied.
func (p *Postgres) migrated(ctx context.Context, conn *pgxpool.Conn, migrations []migration) bool {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return false
	}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return false
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return false
	}
	applied := map[int64]bool{}
	for _, v := range versions {
		applied[v] = true
	}
	for _, m := range migrations {
		if !applied[m.version] {
			return false
		}
	}
	return true
}

// migrationLockKey is the advisory lock key of schema's migrations.
func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("warden/audit/migrations\x00" + schema))
	return int64(h.Sum64())
}

// Query implements Store.
func (p *Postgres) Query(ctx context.Context, f warden.AuditFilter) ([]warden.AuditEvent, error) {
	limit, err := queryLimit(f.Limit)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	where, args := whereClause(f, limit,
		func(n int) string { return "$" + strconv.Itoa(n) },
		func(t time.Time) any { return t }, "ILIKE", func(c string) string { return c + "::text" })
	rows, err := p.pool.Query(ctx, "SELECT "+selectColumns+" FROM audit_events"+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	defer rows.Close()
	return scanEvents(rows, func(e *warden.AuditEvent, occurredAt, recordedAt time.Time) error {
		e.OccurredAt, e.RecordedAt = occurredAt.UTC(), recordedAt.UTC()
		return nil
	})
}

// Has implements Store.
func (p *Postgres) Has(ctx context.Context, eventID string) (bool, error) {
	var ok bool
	err := untilAvailable(ctx, func() error {
		return p.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM audit_events WHERE event_id = $1)", eventID).Scan(&ok)
	})
	if err != nil {
		return false, fmt.Errorf("look up audit event %s: %w", eventID, err)
	}
	return ok, nil
}

// Seal implements Store (sealAll): each tenant's seal is written in its
// own transaction, holding the tenant's seal lock exclusively.
func (p *Postgres) Seal(ctx context.Context, tenant string) ([]Seal, error) {
	return sealAll(ctx, p, tenant)
}

// Seals implements Store.
func (p *Postgres) Seals(ctx context.Context, tenant string) ([]Seal, error) {
	rows, err := p.pool.Query(ctx, "SELECT "+sealColumns+" FROM audit_seals WHERE $1 = '' OR tenant = $1 ORDER BY tenant, seal_index", tenant)
	if err != nil {
		return nil, fmt.Errorf("read seals: %w", err)
	}
	seals, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Seal, error) { return scanSeal(row) })
	if err != nil {
		return nil, fmt.Errorf("read seals: %w", err)
	}
	return seals, nil
}

// Close implements Store.
func (p *Postgres) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		for _, q := range p.queues {
			close(q)
		}
	}
	p.mu.Unlock()
	p.committers.Wait()
	p.pool.Close()
	return nil
}

// tenantVisible implements tenantVisibility: a role bound by the auditor
// policies sees a tenant only with a grant in audit_tenant_access (its
// own, or '*'); the owner, superusers and roles bypassing row-level
// security see every tenant.
func (p *Postgres) tenantVisible(ctx context.Context, tenant string) (bool, string, error) {
	var (
		visible bool
		role    string
	)
	err := p.pool.QueryRow(ctx, `SELECT current_user::text,
		(SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user)
		OR pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = 'audit_events'::regclass), 'MEMBER')
		OR NOT EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'warden_audit_auditor' AND pg_has_role(current_user, g.oid, 'MEMBER'))
		OR EXISTS (SELECT 1 FROM audit_tenant_access a WHERE a.tenant IN ($1, '*'))`, tenant).Scan(&role, &visible)
	if err != nil {
		return false, "", fmt.Errorf("check that tenant %s is visible: %w", tenant, err)
	}
	return visible, role, nil
}
