package audit

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL primitives of retention (retainRuns).

// Retain implements Store (retainRuns), holding the tenant's seal lock
// exclusively. The delete guard (migration 0010) lets the transaction
// delete exactly the runs the retention seal it just wrote lists. Only the
// schema owner may delete: the writer and auditor roles get "permission
// denied".
func (p *Postgres) Retain(ctx context.Context, opts RetainOptions) (Seal, error) {
	return retainRuns(ctx, p, opts)
}

// retainHint implements storeDriver.
func (p *Postgres) retainHint(err error) string {
	if isInsufficientPrivilege(err) {
		return ": connect as the owner of the audit schema (the role that ran the migrations)"
	}
	return ""
}

// retainable implements driverTx.
func (t pgTx) retainable(ctx context.Context, tenant string, before time.Time) ([]chainStats, error) {
	rows, err := t.tx.Query(ctx, `WITH c AS (
			SELECT workflow_id, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM audit_events
			WHERE tenant = $1 GROUP BY workflow_id HAVING max(occurred_at) < $2)
		SELECT c.workflow_id, c.n, c.lo, c.hi, e.hash FROM c JOIN audit_events e ON e.seq = c.hi
		ORDER BY c.workflow_id`, tenant, before)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (chainStats, error) {
		var c chainStats
		err := row.Scan(&c.workflowID, &c.events, &c.firstSeq, &c.lastSeq, &c.headHash)
		return c, err
	})
}

// eachDroppedSeq implements driverTx.
func (t pgTx) eachDroppedSeq(ctx context.Context, tenant string, workflows []string, fn func(int64) error) error {
	rows, err := t.tx.Query(ctx, "SELECT seq FROM audit_events WHERE tenant = $1 AND workflow_id = ANY($2)", tenant, workflows)
	if err != nil {
		return err
	}
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&seq}, func() error { return fn(seq) })
	return err
}

// liftDeleteGuard implements driverTx: nothing to do, the guard lets
// through what the transaction's retention seal lists.
func (pgTx) liftDeleteGuard(context.Context, string) error { return nil }

// deleteRuns implements driverTx.
func (t pgTx) deleteRuns(ctx context.Context, tenant string, workflows []string) (int64, error) {
	tag, err := t.tx.Exec(ctx, "DELETE FROM audit_events WHERE tenant = $1 AND workflow_id = ANY($2)", tenant, workflows)
	return tag.RowsAffected(), err
}

// restoreDeleteGuard implements driverTx (see liftDeleteGuard).
func (pgTx) restoreDeleteGuard(context.Context, string) error { return nil }
