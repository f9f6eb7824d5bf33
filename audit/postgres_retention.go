package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errDryRun rolls back a dry run's transaction.
var errDryRun = errors.New("dry run")

// Retain implements Store. In one transaction, holding the tenant's seal
// lock exclusively (no append of the tenant in flight): seal the tenant's
// new events, pick the runs whose every event occurred before the cutoff,
// write the retention seal naming them, lift the delete guard for this
// transaction and tenant only, and drop exactly those runs. A dry run does
// the same and rolls back. Only the schema owner may delete: the writer
// and auditor roles get "permission denied".
func (p *Postgres) Retain(ctx context.Context, opts RetainOptions) (Seal, error) {
	now := time.Now()
	if err := opts.validate(now); err != nil {
		return Seal{}, err
	}
	var seal Seal
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, _, err := sealNext(ctx, p, pgTx{p, tx}, opts.Tenant); err != nil {
			return fmt.Errorf("seal before dropping: %w", err)
		}
		rows, err := tx.Query(ctx, `WITH c AS (
				SELECT workflow_id, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM audit_events
				WHERE tenant = $1 GROUP BY workflow_id HAVING max(occurred_at) < $2)
			SELECT c.workflow_id, c.n, c.lo, c.hi, e.hash FROM c JOIN audit_events e ON e.seq = c.hi
			ORDER BY c.workflow_id`, opts.Tenant, opts.Before.UTC().Truncate(timePrecision))
		if err != nil {
			return fmt.Errorf("find runs to drop: %w", err)
		}
		chains, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chainStats, error) {
			var c chainStats
			err := row.Scan(&c.workflowID, &c.events, &c.firstSeq, &c.lastSeq, &c.headHash)
			return c, err
		})
		if err != nil {
			return fmt.Errorf("find runs to drop: %w", err)
		}
		if len(chains) == 0 {
			return ErrNothingToRetain
		}
		workflows := make([]string, len(chains))
		for i, c := range chains {
			workflows[i] = c.workflowID
		}
		rows, err = tx.Query(ctx, "SELECT "+sealColumns+" FROM audit_seals WHERE tenant = $1 ORDER BY seal_index", opts.Tenant)
		if err != nil {
			return fmt.Errorf("read seals: %w", err)
		}
		seals, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Seal, error) { return scanSeal(row) })
		if err != nil {
			return fmt.Errorf("read seals: %w", err)
		}
		// Count the dropped events per covering checkpoint as they stream
		// by: a big retention does not hold every seq in memory.
		rows, err = tx.Query(ctx, "SELECT seq FROM audit_events WHERE tenant = $1 AND workflow_id = ANY($2)", opts.Tenant, workflows)
		if err != nil {
			return fmt.Errorf("read runs to drop: %w", err)
		}
		removed := map[int64]int64{}
		var seq int64
		_, err = pgx.ForEachRow(rows, []any{&seq}, func() error {
			idx, err := coveringSeal(seals, seq)
			removed[idx]++
			return err
		})
		if err != nil {
			return fmt.Errorf("read runs to drop: %w", err)
		}
		prev := &seals[len(seals)-1] // sealTenant left at least one: the tenant has events
		if seal, err = newRetentionSeal(opts, prev, chains, removed, time.Now()); err != nil {
			return err
		}
		if opts.DryRun {
			return errDryRun
		}
		seal = p.sign(seal)
		if err := (pgTx{p, tx}).insertSeal(ctx, seal); err != nil {
			return fmt.Errorf("write retention seal: %w", err)
		}
		// The delete guard (migration 0010) lets this transaction delete
		// exactly the runs the seal it just wrote lists.
		tag, err := tx.Exec(ctx, "DELETE FROM audit_events WHERE tenant = $1 AND workflow_id = ANY($2)", opts.Tenant, workflows)
		if err != nil {
			return fmt.Errorf("drop runs: %w", err)
		}
		if tag.RowsAffected() != seal.Retention.Events {
			return fmt.Errorf("drop runs: deleted %d events, expected %d", tag.RowsAffected(), seal.Retention.Events)
		}
		return nil
	})
	switch {
	case errors.Is(err, errDryRun):
		return seal, nil
	case errors.Is(err, ErrNothingToRetain):
		return Seal{}, fmt.Errorf("retain tenant %s before %s: %w", opts.Tenant, opts.Before.UTC().Format(time.RFC3339), err)
	case err != nil:
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return Seal{}, fmt.Errorf("retain tenant %s: %w: connect as the owner of the audit schema (the role that ran the migrations)", opts.Tenant, err)
		}
		return Seal{}, fmt.Errorf("retain tenant %s: %w", opts.Tenant, err)
	}
	return seal, nil
}
