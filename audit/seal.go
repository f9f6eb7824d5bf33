package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Seal kinds.
const (
	// SealKindCheckpoint is a periodic seal over the chain heads.
	SealKindCheckpoint = "checkpoint"
)

// Seal is one checkpoint of a tenant's seal chain: it commits to the head
// of every chain (workflow) of the tenant that gained events with Seq in
// (FromSeq, ToSeq], and to how many events that range holds, so deleting
// a whole run or the tail of one is detected even though each run's own
// chain would still link.
type Seal struct {
	Tenant string `json:"tenant"`
	// Index is the seal's position in the tenant's seal chain, from 1.
	Index int64  `json:"seal_index"`
	Kind  string `json:"kind"`
	// FromSeq (exclusive) and ToSeq (inclusive) bound the events covered.
	FromSeq    int64       `json:"from_seq"`
	ToSeq      int64       `json:"to_seq"`
	EventCount int64       `json:"event_count"`
	Heads      []ChainHead `json:"heads"`
	SealedAt   time.Time   `json:"sealed_at"`
	// PrevHash is the previous seal's Hash ("" for the first).
	PrevHash string `json:"prev_hash"`
	// Hash is the hex SHA-256 of the seal's canonical encoding (SealHash).
	Hash string `json:"hash"`
	// Retention records what a retention seal dropped (nil for a
	// checkpoint).
	Retention *Retention `json:"retention,omitempty"`
	// KeyID and Signature are the sealer's Ed25519 signature over
	// SealSigningMessage(KeyID, Hash) (empty for a seal written without a
	// key, as every seal before signing existed was). They are not part of
	// Hash.
	KeyID     string `json:"key_id,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// ChainHead is the last event of one workflow's chain at a seal.
type ChainHead struct {
	WorkflowID string `json:"workflow_id"`
	// Hash is that event's Hash.
	Hash string `json:"hash"`
	// Seq is that event's Seq.
	Seq int64 `json:"seq"`
}

// SealHash returns the hex SHA-256 of s's canonical encoding: the canonical
// JSON of its fields without hash, heads sorted by workflow ID, sealed_at
// as in events, plus "v"; a retention seal adds its record under
// "retention" (a checkpoint has no such key, so its hash is unchanged).
func SealHash(s Seal) (string, error) {
	heads := slices.Clone(s.Heads)
	if heads == nil {
		heads = []ChainHead{}
	}
	slices.SortFunc(heads, func(a, b ChainHead) int { return strings.Compare(a.WorkflowID, b.WorkflowID) })
	raw, err := json.Marshal(struct {
		V          int         `json:"v"`
		Tenant     string      `json:"tenant"`
		Index      int64       `json:"seal_index"`
		Kind       string      `json:"kind"`
		FromSeq    int64       `json:"from_seq"`
		ToSeq      int64       `json:"to_seq"`
		EventCount int64       `json:"event_count"`
		Heads      []ChainHead `json:"heads"`
		SealedAt   string      `json:"sealed_at"`
		PrevHash   string      `json:"prev_hash"`
		Retention  any         `json:"retention,omitempty"`
	}{HashVersion, s.Tenant, s.Index, s.Kind, s.FromSeq, s.ToSeq, s.EventCount, heads,
		s.SealedAt.UTC().Format(canonicalTime), s.PrevHash, hashedRetention(s.Retention)})
	if err != nil {
		return "", fmt.Errorf("encode seal: %w", err)
	}
	return canonicalSHA256(raw)
}

// newSeal builds the seal after prev (nil for a tenant's first) over the
// heads and count of (prev.ToSeq, toSeq].
func newSeal(tenant string, prev *Seal, toSeq, count int64, heads []ChainHead, now time.Time) (Seal, error) {
	s := Seal{Tenant: tenant, Index: 1, Kind: SealKindCheckpoint, ToSeq: toSeq, EventCount: count,
		Heads: heads, SealedAt: now.UTC().Truncate(timePrecision)}
	if prev != nil {
		s.Index, s.FromSeq, s.PrevHash = prev.Index+1, prev.ToSeq, prev.Hash
	}
	slices.SortFunc(s.Heads, func(a, b ChainHead) int { return cmp.Compare(a.WorkflowID, b.WorkflowID) })
	h, err := SealHash(s)
	if err != nil {
		return Seal{}, err
	}
	s.Hash = h
	return s, nil
}

// sealColumns are audit_seals' columns, in the order both backends write
// and read them.
const sealColumns = "tenant, seal_index, kind, from_seq, to_seq, event_count, heads, sealed_at, prev_hash, hash, retention, key_id, signature"

// sealValues returns s's values in sealColumns order: heads as JSON text,
// the retention record as JSON text (NULL for a checkpoint) and sealed_at
// in the backend's encodeTime.
func sealValues(s Seal, encodeTime func(time.Time) any) ([]any, error) {
	heads, err := json.Marshal(s.Heads)
	if err != nil {
		return nil, err
	}
	retention, err := retentionJSON(s.Retention)
	if err != nil {
		return nil, err
	}
	return []any{s.Tenant, s.Index, s.Kind, s.FromSeq, s.ToSeq, s.EventCount, string(heads),
		encodeTime(s.SealedAt), s.PrevHash, s.Hash, retention, s.KeyID, s.Signature}, nil
}

// sealAll implements Store.Seal over d: each tenant (every tenant with
// events when tenant is empty) gets its next seal in a transaction of its
// own (sealNext).
func sealAll(ctx context.Context, d storeDriver, tenant string) ([]Seal, error) {
	defer d.exclusive()()
	tenants := []string{tenant}
	if tenant == "" {
		var err error
		if tenants, err = d.tenants(ctx); err != nil {
			return nil, fmt.Errorf("seal: list tenants: %w", err)
		}
	}
	var out []Seal
	for _, t := range tenants {
		var (
			s  Seal
			ok bool
		)
		err := d.inTx(ctx, func(tx driverTx) error {
			var err error
			s, ok, err = sealNext(ctx, d, tx, t)
			return err
		})
		if err != nil {
			return out, fmt.Errorf("seal tenant %s: %w", t, err)
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// sealNext writes tenant's next seal in tx, holding the tenant's lock so
// that no append of the tenant is in flight; ok is false (and nothing is
// written) when the tenant has no event since its last seal.
func sealNext(ctx context.Context, d storeDriver, tx driverTx, tenant string) (s Seal, ok bool, err error) {
	if err := tx.lockTenant(ctx, tenant); err != nil {
		return Seal{}, false, err
	}
	last, err := tx.seals(ctx, tenant, true)
	if err != nil {
		return Seal{}, false, err
	}
	var (
		prev *Seal
		from int64
	)
	if len(last) > 0 {
		prev = &last[len(last)-1]
		from = prev.ToSeq
	}
	to, count, ok, err := tx.eventsAfter(ctx, tenant, from)
	if err != nil || !ok {
		return Seal{}, false, err
	}
	heads, err := tx.chainHeads(ctx, tenant, from, to)
	if err != nil {
		return Seal{}, false, err
	}
	if s, err = newSeal(tenant, prev, to, count, heads, time.Now()); err != nil {
		return Seal{}, false, err
	}
	s = d.sign(s)
	if err := tx.insertSeal(ctx, s); err != nil {
		return Seal{}, false, err
	}
	return s, true, nil
}
