package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL primitives of the shared algorithms (driver.go): *Postgres
// is the storeDriver, pgTx the driverTx.

// pgTx is one transaction of the PostgreSQL store.
type pgTx struct {
	p  *Postgres
	tx pgx.Tx
}

// exclusive implements storeDriver: nothing to wait for here, the tenant's
// seal lock (lockTenant) keeps appends out.
func (p *Postgres) exclusive() func() { return func() {} }

// tenants implements storeDriver with a loose index scan: one index probe
// per tenant, not a scan of every row.
func (p *Postgres) tenants(ctx context.Context) ([]string, error) {
	rows, err := p.pool.Query(ctx, `WITH RECURSIVE t(tenant) AS (
		SELECT min(tenant) FROM audit_events
		UNION ALL
		SELECT (SELECT min(e.tenant) FROM audit_events e WHERE e.tenant > t.tenant) FROM t WHERE t.tenant IS NOT NULL)
		SELECT tenant FROM t WHERE tenant IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// inTx implements storeDriver.
func (p *Postgres) inTx(ctx context.Context, fn func(driverTx) error) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return fn(pgTx{p, tx}) })
}

// lockTenant implements driverTx: appends hold the tenant's seal lock
// shared (committer.insert), this takes it exclusively.
func (t pgTx) lockTenant(ctx context.Context, tenant string) error {
	_, err := t.tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", t.p.lockKey("seal", tenant))
	return err
}

// seals implements driverTx.
func (t pgTx) seals(ctx context.Context, tenant string, lastOnly bool) ([]Seal, error) {
	order := " ORDER BY seal_index"
	if lastOnly {
		order += " DESC LIMIT 1"
	}
	rows, err := t.tx.Query(ctx, "SELECT "+sealColumns+" FROM audit_seals WHERE tenant = $1"+order, tenant)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Seal, error) { return scanSeal(row) })
}

// eventsAfter implements driverTx.
func (t pgTx) eventsAfter(ctx context.Context, tenant string, from int64) (int64, int64, bool, error) {
	var (
		to    *int64
		count int64
	)
	if err := t.tx.QueryRow(ctx, "SELECT max(seq), count(*) FROM audit_events WHERE tenant = $1 AND seq > $2",
		tenant, from).Scan(&to, &count); err != nil || to == nil {
		return 0, 0, false, err
	}
	return *to, count, true, nil
}

// chainHeads implements driverTx.
func (t pgTx) chainHeads(ctx context.Context, tenant string, from, to int64) ([]ChainHead, error) {
	rows, err := t.tx.Query(ctx, `SELECT DISTINCT ON (workflow_id) workflow_id, hash, seq FROM audit_events
		WHERE tenant = $1 AND seq > $2 AND seq <= $3 ORDER BY workflow_id, seq DESC`, tenant, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ChainHead, error) {
		var h ChainHead
		err := row.Scan(&h.WorkflowID, &h.Hash, &h.Seq)
		return h, err
	})
}

// insertSeal implements driverTx.
func (t pgTx) insertSeal(ctx context.Context, s Seal) error {
	values, err := sealValues(s, func(t time.Time) any { return t })
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, "INSERT INTO audit_seals ("+sealColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)", values...)
	return err
}

// scanSeal reads one audit_seals row of sealColumns.
func scanSeal(row pgx.Row) (Seal, error) {
	var (
		s                Seal
		heads, retention []byte
	)
	if err := row.Scan(&s.Tenant, &s.Index, &s.Kind, &s.FromSeq, &s.ToSeq, &s.EventCount, &heads, &s.SealedAt, &s.PrevHash, &s.Hash, &retention, &s.KeyID, &s.Signature); err != nil {
		return Seal{}, err
	}
	s.SealedAt = s.SealedAt.UTC()
	if err := json.Unmarshal(heads, &s.Heads); err != nil {
		return Seal{}, fmt.Errorf("decode heads of seal %s #%d: %w", s.Tenant, s.Index, err)
	}
	var err error
	if s.Retention, err = decodeRetention(retention); err != nil {
		return Seal{}, fmt.Errorf("decode retention record of seal %s #%d: %w", s.Tenant, s.Index, err)
	}
	return s, nil
}
