package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	if _, err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres audit store: %w", err)
	}
	// Each committer holds a connection while it commits; leave half the
	// pool to queries and seals.
	n := min(pgMaxCommitters, max(1, int(cfg.MaxConns)/2))
	p.queues = make([]chan appendRequest, n)
	for i := range p.queues {
		c := &committer{p: p, queue: make(chan appendRequest), heads: map[chainKey]string{}}
		p.queues[i] = c.queue
		p.committers.Go(c.run)
	}
	return p, nil
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

// Append implements Store. Concurrent appends are group-committed:
// committer goroutines, each on its own connection and fed by its own
// queue, take the appends waiting in their queue and write them in one
// transaction (each chain still linked under its lock), so 50 runs
// appending at once cost a handful of commits, not 50. Appends are
// sharded by chain, so one run's appends queue behind each other (in
// order) while other runs commit in parallel. Append returns when its
// events are committed; a batch that fails is retried one append at a
// time, so one caller's failure is never another's.
func (p *Postgres) Append(ctx context.Context, events ...warden.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	events, err := prepare(events)
	if err != nil {
		return fmt.Errorf("append audit events: %w", err)
	}
	req := appendRequest{ctx: ctx, events: events, done: make(chan error, 1)}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return errors.New("append audit events: store is closed")
	}
	select {
	case p.queues[p.shard(events[0])] <- req:
		p.mu.RUnlock()
	case <-ctx.Done():
		p.mu.RUnlock()
		return fmt.Errorf("append audit events: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The write may still commit; a retry of the same events is a no-op.
		return fmt.Errorf("append audit events: %w", ctx.Err())
	}
}

// shard picks the committer of e's chain.
func (p *Postgres) shard(e warden.AuditEvent) int {
	h := fnv.New32a()
	h.Write([]byte(e.Tenant))
	h.Write([]byte{0})
	h.Write([]byte(e.WorkflowID))
	return int(h.Sum32() % uint32(len(p.queues)))
}

const (
	// pgMaxCommitters caps how many group-commit transactions run at once
	// (fewer when the pool is small). More committers commit more chains
	// in parallel, but each group then holds fewer events: with 50
	// concurrent runs on 2 cores, 4 did a little better than 8, and 16 to
	// 48 worse (BENCHMARKS.md, audit log).
	pgMaxCommitters = 4
	// pgMaxGroup caps the events one group commit takes.
	pgMaxGroup = 2000
	// pgAppendTimeout bounds one group commit (a caller's own context
	// only bounds its wait).
	pgAppendTimeout = 30 * time.Second
)

// committer is one group-commit goroutine and what it knows.
type committer struct {
	p     *Postgres
	queue chan appendRequest
	// heads holds the head this committer last wrote of each chain of its
	// shard: still the head unless another writer appended since, which
	// insert checks under the chain lock.
	heads map[chainKey]string
}

// pgMaxKnownHeads bounds a committer's remembered heads (forgotten all at
// once when full: a forgotten head is just read again).
const pgMaxKnownHeads = 50000

// run serves the committer's queue until it is closed.
func (c *committer) run() {
	for req := range c.queue {
		group := []appendRequest{req}
		n := len(req.events)
	drain:
		for n < pgMaxGroup {
			select {
			case r, ok := <-c.queue:
				if !ok {
					break drain
				}
				group = append(group, r)
				n += len(r.events)
			default:
				break drain
			}
		}
		commitGroup(group, c.insertWithRetry)
	}
}

// insertWithRetry inserts events, retrying deadlocks and serialization
// failures, a moved head or a stored ID (read again at once), and waiting
// out an unavailable database for as long as the caller waits, up to
// pgAppendTimeout (safe: the insert is idempotent, so a commit whose
// answer was lost is skipped on the next try).
func (c *committer) insertWithRetry(ctx context.Context, events []warden.AuditEvent) error {
	caller := ctx
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pgAppendTimeout)
	defer cancel()
	conflicts, outages := 0, 0
	for {
		err := c.insert(ctx, events)
		if err == nil {
			return nil
		}
		var pause time.Duration
		switch {
		case unavailable(err) && caller.Err() == nil:
			outages++
			pause = reconnectPause(outages)
		case retryable(err) && conflicts < pgAppendAttempts-1:
			conflicts++
			if !conflict(err) {
				continue // a moved head or a stored ID: read them, right away
			}
			// A jittered pause lets the surviving transaction commit first.
			pause = time.Duration(conflicts) * (10*time.Millisecond + rand.N(20*time.Millisecond))
		default:
			return fmt.Errorf("append audit events: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("append audit events: %w", err)
		case <-time.After(pause):
		}
	}
}

// insert links events into their chains and writes them in one
// transaction, holding a shared lock per tenant (a seal takes it
// exclusively, so it sees no append in flight) and an exclusive lock per
// chain (taken in key order). When the committer knows every chain's head
// (it wrote it), one pipelined round trip locks, checks those heads are
// still the heads, inserts and commits. Otherwise a first round trip
// locks and reads the heads and which IDs are stored, and a second
// inserts and commits. Either way the commit is durable when it returns;
// a failed attempt forgets the heads of its chains.
func (c *committer) insert(ctx context.Context, events []warden.AuditEvent) (err error) {
	p := c.p
	keys := chainKeys(events)
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			for _, k := range keys {
				delete(c.heads, k)
			}
			// The transaction may be open (or aborted): end it before the
			// connection goes back, or drop the connection.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
				_ = conn.Hijack().Close(rctx)
				return
			}
		}
		conn.Release()
	}()

	tenants := tenantsOf(keys)
	tenantLocks := make([]int64, len(tenants))
	for i, t := range tenants {
		tenantLocks[i] = p.lockKey("seal", t)
	}
	chainLocks := make([]int64, len(keys))
	chainTenants := make([]string, len(keys))
	chainWorkflows := make([]string, len(keys))
	known := make([]string, len(keys))
	allKnown := true
	for i, k := range keys {
		chainLocks[i] = p.lockKey("chain", k.tenant, k.workflowID)
		chainTenants[i], chainWorkflows[i] = k.tenant, k.workflowID
		var ok bool
		known[i], ok = c.heads[k]
		allKnown = allKnown && ok
	}
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue("SELECT count(pg_advisory_xact_lock_shared(k)) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, i)", tenantLocks)
	batch.Queue("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, i)", chainLocks)
	heads := make(map[chainKey]string, len(keys))
	existing := map[string]bool{}
	// Sequence numbers are taken before the rows are written: from hash
	// version 2 they are part of each row's hash. Unused ones (events
	// already stored) leave gaps, as a rolled-back insert always did.
	var seqs []int64
	batch.Queue("SELECT nextval('audit_events_seq_seq') FROM generate_series(1, $1::int)", len(events)).Query(func(rows pgx.Rows) error {
		var err error
		seqs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		slices.Sort(seqs)
		return err
	})
	if allKnown {
		for i, k := range keys {
			heads[k] = known[i]
		}
		batch.Queue("SELECT audit_expect_heads($1, $2, $3)", chainTenants, chainWorkflows, known)
	} else {
		ids := make([]string, len(events))
		for i, e := range events {
			ids[i] = e.ID
		}
		batch.Queue(`SELECT c.tenant, c.workflow_id, coalesce((SELECT e.hash FROM audit_events e
			WHERE e.tenant = c.tenant AND e.workflow_id = c.workflow_id ORDER BY e.seq DESC LIMIT 1), '')
			FROM unnest($1::text[], $2::text[]) AS c(tenant, workflow_id)`, chainTenants, chainWorkflows).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k chainKey
				var h string
				if err := rows.Scan(&k.tenant, &k.workflowID, &h); err != nil {
					return err
				}
				heads[k] = h
			}
			return rows.Err()
		})
		batch.Queue("SELECT event_id FROM audit_events WHERE event_id = ANY($1)", ids).Query(func(rows pgx.Rows) error {
			found, err := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, id := range found {
				existing[id] = true
			}
			return err
		})
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return err
	}
	batch = &pgx.Batch{}
	fresh, err := link(events, heads, existing, seqs, time.Now())
	if err != nil {
		return err
	}
	// A plain INSERT: a stored ID is either known absent (read above
	// under the chain locks) or, on the known-heads path, not looked up.
	// A unique violation (a retry of a committed append, or the same ID
	// written concurrently in another chain) aborts the whole transaction
	// (the COMMIT after it is skipped); the retry reads the heads and
	// skips stored IDs.
	for chunk := range chunks(fresh, pgRowsPerStatement) {
		sql, args, err := pgChainInsertStatement(chunk)
		if err != nil {
			return err
		}
		batch.Queue(sql, args...)
	}
	batch.Queue("COMMIT")
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return err
	}
	if len(c.heads) > pgMaxKnownHeads {
		clear(c.heads)
	}
	for k, h := range heads {
		c.heads[k] = h
	}
	return nil
}

// errIDInOtherChain is returned (and retried) when an event's ID was
// written concurrently under another tenant or workflow.
var errIDInOtherChain = errors.New("event ID written concurrently in another chain")

// lockKey is the advisory lock key of a seal or chain in this schema.
func (p *Postgres) lockKey(kind string, parts ...string) int64 {
	h := fnv.New64a()
	h.Write([]byte("warden/audit/" + kind + "\x00" + p.schema))
	for _, part := range parts {
		h.Write([]byte{0})
		h.Write([]byte(part))
	}
	return int64(h.Sum64())
}

// pgChainInsertStatement returns the INSERT of linked events.
func pgChainInsertStatement(events []warden.AuditEvent) (string, []any, error) {
	return pgValuesStatement(events, chainColumns, chainColumnCount, "", func(e warden.AuditEvent) ([]any, error) {
		return chainValues(e, func(t time.Time) any { return t })
	})
}

// pgInsertStatement returns the INSERT of events without the columns the
// chained append assigns, followed by suffix.
func pgInsertStatement(events []warden.AuditEvent, suffix string) (string, []any, error) {
	return pgValuesStatement(events, columns, columnCount, suffix, func(e warden.AuditEvent) ([]any, error) {
		return insertValues(e, e.OccurredAt)
	})
}

// pgValuesStatement returns the INSERT of events into cols, each event's
// values given by values.
func pgValuesStatement(events []warden.AuditEvent, cols string, n int, suffix string, values func(warden.AuditEvent) ([]any, error)) (string, []any, error) {
	var b strings.Builder
	b.WriteString("INSERT INTO audit_events (" + cols + ") VALUES ")
	args := make([]any, 0, len(events)*n)
	for i, e := range events {
		values, err := values(e)
		if err != nil {
			return "", nil, err
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
	b.WriteString(suffix)
	return b.String(), args, nil
}

// pgInsertChunk inserts events, skipping IDs already stored (the
// unchained baseline of the benchmarks).
func pgInsertChunk(ctx context.Context, tx pgx.Tx, events []warden.AuditEvent) error {
	sql, args, err := pgInsertStatement(events, " ON CONFLICT (event_id) DO NOTHING")
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(len(events)) {
		return errIDInOtherChain
	}
	return nil
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

// conflict reports whether err is a deadlock or serialization failure.
func conflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// retryable reports whether err is a transient conflict between concurrent
// transactions (deadlock or serialization failure), a chain head that
// moved (see insert) or an event ID that was already stored.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 23505 on event_id: the same ID written concurrently in another
		// chain (see insert); the retry finds it stored and skips it.
		return pgErr.Code == "40P01" || pgErr.Code == "40001" || pgErr.Code == "WA001" ||
			(pgErr.Code == "23505" && pgErr.ConstraintName == "audit_events_event_id_key")
	}
	return errors.Is(err, errIDInOtherChain)
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
	var (
		out        []warden.AuditEvent
		s          scanned
		occurredAt time.Time
		recordedAt time.Time
	)
	for rows.Next() {
		s = scanned{}
		if err := rows.Scan(s.dest(&occurredAt, &recordedAt)...); err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		e, err := s.finish()
		if err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		e.OccurredAt, e.RecordedAt = occurredAt.UTC(), recordedAt.UTC()
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
