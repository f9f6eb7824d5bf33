package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SealKindRetention is a seal written by Retain in the transaction that
// dropped whole runs: its Retention record says exactly what is gone.
const SealKindRetention = "retention"

// RetainOptions selects what Retain drops.
type RetainOptions struct {
	// Tenant whose runs are dropped. Required.
	Tenant string
	// Before is the cutoff: a run is dropped when every one of its events
	// occurred before it. Required, and not in the future.
	Before time.Time
	// Actor names who ordered the drop (recorded in the seal).
	Actor string
	// DryRun computes the seal without writing it or dropping anything.
	DryRun bool
}

// Retention is the record of a retention seal: which whole runs
// (chains) of the tenant were dropped and how many events that removed
// from each earlier seal's range, so Verify can tell dropped-by-policy
// from deleted.
type Retention struct {
	// Cutoff is RetainOptions.Before.
	Cutoff time.Time `json:"cutoff"`
	Actor  string    `json:"actor"`
	// Chains are the dropped runs, sorted by workflow ID.
	Chains []RetainedChain `json:"chains"`
	// Removed counts the dropped events by the checkpoint seal covering
	// them, sorted by seal index.
	Removed []RemovedCount `json:"removed"`
	// Events is the total number of events dropped.
	Events int64 `json:"events"`
	// Digest is the hex SHA-256 of the canonical JSON of Chains.
	Digest string `json:"digest"`
}

// RetainedChain is one dropped run.
type RetainedChain struct {
	WorkflowID string `json:"workflow_id"`
	Events     int64  `json:"events"`
	FirstSeq   int64  `json:"first_seq"`
	LastSeq    int64  `json:"last_seq"`
	// HeadHash is the Hash of its last event.
	HeadHash string `json:"head_hash"`
}

// RemovedCount is how many dropped events a checkpoint seal covered.
type RemovedCount struct {
	SealIndex int64 `json:"seal_index"`
	Events    int64 `json:"events"`
}

// ErrNothingToRetain is returned by Retain when no run of the tenant is
// entirely older than the cutoff.
var ErrNothingToRetain = errors.New("nothing to drop: no run of the tenant ends before the cutoff")

// validate checks opts against now.
func (o RetainOptions) validate(now time.Time) error {
	switch {
	case strings.TrimSpace(o.Tenant) == "":
		return errors.New("retain: a tenant is required (retention drops one tenant's runs at a time)")
	case o.Before.IsZero():
		return errors.New("retain: a cutoff time is required")
	case o.Before.After(now):
		return fmt.Errorf("retain: cutoff %s is in the future: give a time in the past", o.Before.UTC().Format(time.RFC3339))
	}
	return nil
}

// RetentionDigest returns the hex SHA-256 of the canonical JSON of chains
// (sorted by workflow ID).
func RetentionDigest(chains []RetainedChain) (string, error) {
	c := slices.Clone(chains)
	if c == nil {
		c = []RetainedChain{}
	}
	slices.SortFunc(c, func(a, b RetainedChain) int { return strings.Compare(a.WorkflowID, b.WorkflowID) })
	raw, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode retained chains: %w", err)
	}
	return canonicalSHA256(raw)
}

// hashedRetention is the retention record as SealHash encodes it.
func hashedRetention(r *Retention) any {
	if r == nil {
		return nil
	}
	chains := slices.Clone(r.Chains)
	if chains == nil {
		chains = []RetainedChain{}
	}
	slices.SortFunc(chains, func(a, b RetainedChain) int { return strings.Compare(a.WorkflowID, b.WorkflowID) })
	removed := slices.Clone(r.Removed)
	if removed == nil {
		removed = []RemovedCount{}
	}
	slices.SortFunc(removed, func(a, b RemovedCount) int { return cmp.Compare(a.SealIndex, b.SealIndex) })
	return struct {
		Cutoff  string          `json:"cutoff"`
		Actor   string          `json:"actor"`
		Chains  []RetainedChain `json:"chains"`
		Removed []RemovedCount  `json:"removed"`
		Events  int64           `json:"events"`
		Digest  string          `json:"digest"`
	}{r.Cutoff.UTC().Format(canonicalTime), r.Actor, chains, removed, r.Events, r.Digest}
}

// chainStats is what a backend reads about one run due for retention.
type chainStats struct {
	workflowID        string
	events            int64
	firstSeq, lastSeq int64
	headHash          string
}

// coveringSeal returns the index of the checkpoint among seals (the
// tenant's, by index) whose range holds seq.
func coveringSeal(seals []Seal, seq int64) (int64, error) {
	i, found := slices.BinarySearchFunc(seals, seq, func(s Seal, seq int64) int {
		switch {
		case seq <= s.FromSeq:
			return 1
		case seq > s.ToSeq:
			return -1
		}
		return 0
	})
	if !found || seals[i].Kind != SealKindCheckpoint {
		return 0, fmt.Errorf("event seq %d is not covered by a checkpoint seal", seq)
	}
	return seals[i].Index, nil
}

// newRetentionSeal builds the retention seal after prev (the tenant's
// last seal, which covers every event: Retain seals first) for the runs
// in chains, of which removed counts the events per covering checkpoint.
func newRetentionSeal(opts RetainOptions, prev *Seal, chains []chainStats, removed map[int64]int64, now time.Time) (Seal, error) {
	r := &Retention{Cutoff: opts.Before.UTC().Truncate(timePrecision), Actor: opts.Actor}
	for _, c := range chains {
		r.Chains = append(r.Chains, RetainedChain{WorkflowID: c.workflowID, Events: c.events,
			FirstSeq: c.firstSeq, LastSeq: c.lastSeq, HeadHash: c.headHash})
		r.Events += c.events
	}
	slices.SortFunc(r.Chains, func(a, b RetainedChain) int { return strings.Compare(a.WorkflowID, b.WorkflowID) })
	for idx, n := range removed {
		r.Removed = append(r.Removed, RemovedCount{SealIndex: idx, Events: n})
	}
	slices.SortFunc(r.Removed, func(a, b RemovedCount) int { return cmp.Compare(a.SealIndex, b.SealIndex) })
	var err error
	if r.Digest, err = RetentionDigest(r.Chains); err != nil {
		return Seal{}, err
	}
	s := Seal{Tenant: opts.Tenant, Index: 1, Kind: SealKindRetention, Heads: []ChainHead{},
		SealedAt: now.UTC().Truncate(timePrecision), Retention: r}
	if prev != nil {
		s.Index, s.FromSeq, s.ToSeq, s.PrevHash = prev.Index+1, prev.ToSeq, prev.ToSeq, prev.Hash
	}
	if s.Hash, err = SealHash(s); err != nil {
		return Seal{}, err
	}
	return s, nil
}

// retentionJSON is the stored form of a seal's retention record (NULL for
// a checkpoint).
func retentionJSON(r *Retention) (any, error) {
	if r == nil {
		return nil, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode retention record: %w", err)
	}
	return string(b), nil
}

// decodeRetention reads a stored retention record.
func decodeRetention(raw []byte) (*Retention, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var r Retention
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	r.Cutoff = r.Cutoff.UTC()
	return &r, nil
}

// errDryRun rolls back a dry run's transaction.
var errDryRun = errors.New("dry run")

// retainRuns implements Store.Retain over d. In one transaction, holding
// the tenant's lock (no append of the tenant in flight): seal the
// tenant's new events, pick the runs whose every event occurred before
// the cutoff, write the retention seal naming them, lift the delete guard
// for this transaction and tenant only, and drop exactly those runs. A
// dry run does the same up to the seal and rolls back.
func retainRuns(ctx context.Context, d storeDriver, opts RetainOptions) (Seal, error) {
	if err := opts.validate(time.Now()); err != nil {
		return Seal{}, err
	}
	defer d.exclusive()()
	var seal Seal
	err := d.inTx(ctx, func(tx driverTx) error {
		var err error
		seal, err = retainTx(ctx, d, tx, opts)
		return err
	})
	switch {
	case errors.Is(err, errDryRun):
		return seal, nil
	case errors.Is(err, ErrNothingToRetain):
		return Seal{}, fmt.Errorf("retain tenant %s before %s: %w", opts.Tenant, opts.Before.UTC().Format(time.RFC3339), err)
	case err != nil:
		return Seal{}, fmt.Errorf("retain tenant %s: %w%s", opts.Tenant, err, d.retainHint(err))
	}
	return seal, nil
}

// retainTx is retainRuns's transaction; a dry run returns its seal with
// errDryRun.
func retainTx(ctx context.Context, d storeDriver, tx driverTx, opts RetainOptions) (Seal, error) {
	if _, _, err := sealNext(ctx, d, tx, opts.Tenant); err != nil {
		return Seal{}, fmt.Errorf("seal before dropping: %w", err)
	}
	chains, err := tx.retainable(ctx, opts.Tenant, opts.Before.UTC().Truncate(timePrecision))
	if err != nil {
		return Seal{}, fmt.Errorf("find runs to drop: %w", err)
	}
	if len(chains) == 0 {
		return Seal{}, ErrNothingToRetain
	}
	workflows := make([]string, len(chains))
	for i, c := range chains {
		workflows[i] = c.workflowID
	}
	seals, err := tx.seals(ctx, opts.Tenant, false)
	if err != nil {
		return Seal{}, fmt.Errorf("read seals: %w", err)
	}
	// Count the dropped events per covering checkpoint as they stream by:
	// a big retention does not hold every seq in memory.
	removed := map[int64]int64{}
	err = tx.eachDroppedSeq(ctx, opts.Tenant, workflows, func(seq int64) error {
		idx, err := coveringSeal(seals, seq)
		removed[idx]++
		return err
	})
	if err != nil {
		return Seal{}, fmt.Errorf("read runs to drop: %w", err)
	}
	prev := &seals[len(seals)-1] // sealNext left at least one: the tenant has events
	seal, err := newRetentionSeal(opts, prev, chains, removed, time.Now())
	if err != nil {
		return Seal{}, err
	}
	if opts.DryRun {
		return seal, errDryRun
	}
	seal = d.sign(seal)
	if err := tx.insertSeal(ctx, seal); err != nil {
		return Seal{}, fmt.Errorf("write retention seal: %w", err)
	}
	if err := tx.liftDeleteGuard(ctx, opts.Tenant); err != nil {
		return Seal{}, fmt.Errorf("lift the delete guard: %w", err)
	}
	n, err := tx.deleteRuns(ctx, opts.Tenant, workflows)
	if err != nil {
		return Seal{}, fmt.Errorf("drop runs: %w", err)
	}
	if n != seal.Retention.Events {
		return Seal{}, fmt.Errorf("drop runs: deleted %d events, expected %d", n, seal.Retention.Events)
	}
	if err := tx.restoreDeleteGuard(ctx, opts.Tenant); err != nil {
		return Seal{}, fmt.Errorf("restore the delete guard: %w", err)
	}
	return seal, nil
}
