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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wardenhq/warden"
)

// The PostgreSQL append path: sharded group-commit committers (the group
// is written by the shared commitGroup), each inserting in pipelined
// round trips under advisory locks, with retries of conflicts and outages.

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
	req, ok, err := newAppendRequest(ctx, events)
	if !ok {
		return err
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return errors.New("append audit events: store is closed")
	}
	select {
	case p.queues[p.shard(req.events[0])] <- req:
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
