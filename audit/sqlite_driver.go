package audit

import (
	"context"
	"database/sql"
	"time"
)

// The SQLite primitives of the shared algorithms (driver.go): *SQLite is
// the storeDriver, sqliteTx the driverTx.

// sqliteTx is one immediate transaction of the SQLite store: it holds the
// database's write lock from BEGIN.
type sqliteTx struct{ tx *sql.Tx }

// exclusive implements storeDriver: it holds writeMu, so no append of
// this process is in flight (other processes wait on the write lock).
func (s *SQLite) exclusive() func() {
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// tenants implements storeDriver.
func (s *SQLite) tenants(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT tenant FROM audit_events ORDER BY tenant")
	if err != nil {
		return nil, err
	}
	return sqlCollect(rows, func(rows *sql.Rows) (t string, err error) {
		err = rows.Scan(&t)
		return t, err
	})
}

// sqlCollect reads every row of rows with scan, then closes rows.
func sqlCollect[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// inTx implements storeDriver.
func (s *SQLite) inTx(ctx context.Context, fn func(driverTx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(sqliteTx{tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// lockTenant implements driverTx: the transaction holds the write lock
// already.
func (sqliteTx) lockTenant(context.Context, string) error { return nil }

// seals implements driverTx.
func (t sqliteTx) seals(ctx context.Context, tenant string, lastOnly bool) ([]Seal, error) {
	where := " WHERE tenant = ? ORDER BY seal_index"
	if lastOnly {
		where += " DESC LIMIT 1"
	}
	return querySeals(ctx, t.tx, where, tenant)
}

// eventsAfter implements driverTx.
func (t sqliteTx) eventsAfter(ctx context.Context, tenant string, from int64) (int64, int64, bool, error) {
	var (
		to    sql.NullInt64
		count int64
	)
	err := t.tx.QueryRowContext(ctx, "SELECT max(seq), count(*) FROM audit_events WHERE tenant = ? AND seq > ?", tenant, from).Scan(&to, &count)
	return to.Int64, count, err == nil && to.Valid, err
}

// chainHeads implements driverTx. SQLite returns the bare columns of the
// row holding max(seq).
func (t sqliteTx) chainHeads(ctx context.Context, tenant string, from, to int64) ([]ChainHead, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT workflow_id, hash, max(seq) FROM audit_events
		WHERE tenant = ? AND seq > ? AND seq <= ? GROUP BY workflow_id ORDER BY workflow_id`, tenant, from, to)
	if err != nil {
		return nil, err
	}
	return sqlCollect(rows, func(rows *sql.Rows) (h ChainHead, err error) {
		err = rows.Scan(&h.WorkflowID, &h.Hash, &h.Seq)
		return h, err
	})
}

// insertSeal implements driverTx.
func (t sqliteTx) insertSeal(ctx context.Context, seal Seal) error {
	values, err := sealValues(seal, func(t time.Time) any { return t.Format(sqliteTimeLayout) })
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, "INSERT INTO audit_seals ("+sealColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values...)
	return err
}
