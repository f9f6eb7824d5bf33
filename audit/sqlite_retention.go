package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// The SQLite primitives of retention (retainRuns).

// Retain implements Store (retainRuns) in one immediate transaction (the
// database's write lock, so no append is in flight), holding writeMu. The
// delete guard is lifted by a mark in audit_retention_in_progress that
// the same transaction removes.
func (s *SQLite) Retain(ctx context.Context, opts RetainOptions) (Seal, error) {
	return retainRuns(ctx, s, opts)
}

// retainHint implements storeDriver.
func (s *SQLite) retainHint(error) string { return "" }

// retainable implements driverTx. The head is the row holding max(seq):
// SQLite returns its bare columns.
func (t sqliteTx) retainable(ctx context.Context, tenant string, before time.Time) ([]chainStats, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT workflow_id, count(*), min(seq), max(seq), hash FROM audit_events
		WHERE tenant = ? GROUP BY workflow_id HAVING max(occurred_at) < ? ORDER BY workflow_id`,
		tenant, before.Format(sqliteTimeLayout))
	if err != nil {
		return nil, err
	}
	return sqlCollect(rows, func(rows *sql.Rows) (c chainStats, err error) {
		err = rows.Scan(&c.workflowID, &c.events, &c.firstSeq, &c.lastSeq, &c.headHash)
		return c, err
	})
}

// inDropped selects the events of the runs (a JSON list) of a tenant.
const inDropped = "tenant = ? AND workflow_id IN (SELECT value FROM json_each(?))"

// eachDroppedSeq implements driverTx.
func (t sqliteTx) eachDroppedSeq(ctx context.Context, tenant string, workflows []string, fn func(int64) error) error {
	list, err := json.Marshal(workflows)
	if err != nil {
		return err
	}
	rows, err := t.tx.QueryContext(ctx, "SELECT seq FROM audit_events WHERE "+inDropped, tenant, string(list))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return err
		}
		if err := fn(seq); err != nil {
			return err
		}
	}
	return rows.Err()
}

// liftDeleteGuard implements driverTx.
func (t sqliteTx) liftDeleteGuard(ctx context.Context, tenant string) error {
	_, err := t.tx.ExecContext(ctx, "INSERT INTO audit_retention_in_progress (tenant) VALUES (?)", tenant)
	return err
}

// deleteRuns implements driverTx.
func (t sqliteTx) deleteRuns(ctx context.Context, tenant string, workflows []string) (int64, error) {
	list, err := json.Marshal(workflows)
	if err != nil {
		return 0, err
	}
	res, err := t.tx.ExecContext(ctx, "DELETE FROM audit_events WHERE "+inDropped, tenant, string(list))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// restoreDeleteGuard implements driverTx.
func (t sqliteTx) restoreDeleteGuard(ctx context.Context, tenant string) error {
	_, err := t.tx.ExecContext(ctx, "DELETE FROM audit_retention_in_progress WHERE tenant = ?", tenant)
	return err
}
