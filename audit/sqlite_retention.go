package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Retain implements Store, as Postgres.Retain does: one immediate
// transaction (the database's write lock, so no append is in flight)
// seals the tenant's new events, writes the retention seal and drops the
// runs it names. The delete guard is lifted by a mark in
// audit_retention_in_progress that the same transaction removes.
func (s *SQLite) Retain(ctx context.Context, opts RetainOptions) (Seal, error) {
	if err := opts.validate(time.Now()); err != nil {
		return Seal{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	seal, err := s.retain(ctx, opts)
	switch {
	case errors.Is(err, ErrNothingToRetain):
		return Seal{}, fmt.Errorf("retain tenant %s before %s: %w", opts.Tenant, opts.Before.UTC().Format(time.RFC3339), err)
	case err != nil:
		return Seal{}, fmt.Errorf("retain tenant %s: %w", opts.Tenant, err)
	}
	return seal, nil
}

func (s *SQLite) retain(ctx context.Context, opts RetainOptions) (Seal, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Seal{}, err
	}
	defer tx.Rollback()
	if _, _, err := sealNext(ctx, s, sqliteTx{tx}, opts.Tenant); err != nil {
		return Seal{}, fmt.Errorf("seal before dropping: %w", err)
	}
	// The head is the row holding max(seq): SQLite returns its bare
	// columns.
	rows, err := tx.QueryContext(ctx, `SELECT workflow_id, count(*), min(seq), max(seq), hash FROM audit_events
		WHERE tenant = ? GROUP BY workflow_id HAVING max(occurred_at) < ? ORDER BY workflow_id`,
		opts.Tenant, opts.Before.UTC().Truncate(timePrecision).Format(sqliteTimeLayout))
	if err != nil {
		return Seal{}, fmt.Errorf("find runs to drop: %w", err)
	}
	var chains []chainStats
	for rows.Next() {
		var c chainStats
		if err := rows.Scan(&c.workflowID, &c.events, &c.firstSeq, &c.lastSeq, &c.headHash); err != nil {
			rows.Close()
			return Seal{}, fmt.Errorf("find runs to drop: %w", err)
		}
		chains = append(chains, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Seal{}, fmt.Errorf("find runs to drop: %w", err)
	}
	if len(chains) == 0 {
		return Seal{}, ErrNothingToRetain
	}
	workflows := make([]string, len(chains))
	for i, c := range chains {
		workflows[i] = c.workflowID
	}
	list, err := json.Marshal(workflows)
	if err != nil {
		return Seal{}, err
	}
	const inDropped = "tenant = ? AND workflow_id IN (SELECT value FROM json_each(?))"
	seals, err := querySeals(ctx, tx, " WHERE tenant = ? ORDER BY seal_index", opts.Tenant)
	if err != nil {
		return Seal{}, fmt.Errorf("read seals: %w", err)
	}
	// Count the dropped events per covering checkpoint as they stream by.
	rows, err = tx.QueryContext(ctx, "SELECT seq FROM audit_events WHERE "+inDropped, opts.Tenant, string(list))
	if err != nil {
		return Seal{}, fmt.Errorf("read runs to drop: %w", err)
	}
	removed := map[int64]int64{}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return Seal{}, fmt.Errorf("read runs to drop: %w", err)
		}
		idx, err := coveringSeal(seals, seq)
		if err != nil {
			rows.Close()
			return Seal{}, fmt.Errorf("read runs to drop: %w", err)
		}
		removed[idx]++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Seal{}, fmt.Errorf("read runs to drop: %w", err)
	}
	prev := &seals[len(seals)-1] // sealTx left at least one: the tenant has events
	seal, err := newRetentionSeal(opts, prev, chains, removed, time.Now())
	if err != nil || opts.DryRun {
		return seal, err
	}
	seal = s.sign(seal)
	if err := (sqliteTx{tx}).insertSeal(ctx, seal); err != nil {
		return Seal{}, fmt.Errorf("write retention seal: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO audit_retention_in_progress (tenant) VALUES (?)", opts.Tenant); err != nil {
		return Seal{}, fmt.Errorf("lift the delete guard: %w", err)
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM audit_events WHERE "+inDropped, opts.Tenant, string(list))
	if err != nil {
		return Seal{}, fmt.Errorf("drop runs: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != seal.Retention.Events {
		return Seal{}, fmt.Errorf("drop runs: deleted %d events, expected %d (%v)", n, seal.Retention.Events, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM audit_retention_in_progress WHERE tenant = ?", opts.Tenant); err != nil {
		return Seal{}, fmt.Errorf("restore the delete guard: %w", err)
	}
	return seal, tx.Commit()
}
