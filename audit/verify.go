package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/wardenhq/warden"
)

// VerifyOptions selects what Verify checks. Zero fields do not filter.
type VerifyOptions struct {
	Tenant     string
	WorkflowID string
	// Since checks only events that occurred at or after it: the first
	// event of each chain in range is then allowed to link to an earlier,
	// unchecked event, and seals are checked for their own chain only.
	Since time.Time
	// PublicKeys check seal signatures (several for rotation, looked up
	// by key ID). None: signatures are not checked (the report says so).
	PublicKeys []PublicKey
	// RequireSigned makes every unsigned seal a break; without it only an
	// unsigned seal after a signed one of the same tenant is.
	RequireSigned bool
	// Anchors are anchor files (ReadAnchor) to compare the seals with.
	Anchors []*AnchorLog
}

// Break is one place where the log does not verify.
type Break struct {
	Tenant     string `json:"tenant"`
	WorkflowID string `json:"workflow_id,omitempty"`
	// Seq and EventID name the event at fault (zero for a seal problem).
	Seq     int64  `json:"seq,omitempty"`
	EventID string `json:"event_id,omitempty"`
	// SealIndex names the seal at fault (zero for an event problem).
	SealIndex int64 `json:"seal_index,omitempty"`
	// Anchor and Line name the anchor file line at fault, if any; Line
	// alone names the line of an export file (its manifest).
	Anchor string `json:"anchor,omitempty"`
	Line   int    `json:"line,omitempty"`
	// Problem says what is wrong.
	Problem string `json:"problem"`
}

func (b Break) String() string {
	if b.Anchor != "" {
		return fmt.Sprintf("tenant %s seal #%d (anchor %s line %d): %s", b.Tenant, b.SealIndex, b.Anchor, b.Line, b.Problem)
	}
	if b.SealIndex > 0 {
		return fmt.Sprintf("tenant %s seal #%d: %s", b.Tenant, b.SealIndex, b.Problem)
	}
	if b.EventID == "" && b.Tenant == "" {
		if b.Line > 0 {
			return fmt.Sprintf("line %d: %s", b.Line, b.Problem)
		}
		return b.Problem
	}
	return fmt.Sprintf("tenant %s workflow %s seq %d event %s: %s", b.Tenant, b.WorkflowID, b.Seq, b.EventID, b.Problem)
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Events int64 `json:"events"`
	Chains int   `json:"chains"`
	Seals  int   `json:"seals"`
	// Unsealed counts checked events no seal covers yet (appended after
	// their tenant's last seal): their chains link, but deleting them
	// whole would not be detected until the next seal.
	Unsealed int64 `json:"unsealed"`
	// Signed and Unsigned count the checked seals with and without a
	// signature; SignaturesChecked says whether public keys were given.
	Signed            int  `json:"signed"`
	Unsigned          int  `json:"unsigned"`
	SignaturesChecked bool `json:"signatures_checked"`
	// Anchored counts the anchor entries compared with the database.
	Anchored int `json:"anchored"`
	// Manifest says what VerifyFile found of an export's manifest:
	// "none", "unsigned", "signed" (and checked) or "signed, not checked".
	// Empty for Verify.
	Manifest string `json:"manifest,omitempty"`
	// Breaks lists the problems in the order found (at most
	// maxBreaks); Breaks[0] is the first broken link.
	Breaks []Break `json:"breaks"`
}

// OK reports whether nothing is broken.
func (r VerifyReport) OK() bool { return len(r.Breaks) == 0 }

// maxBreaks caps the problems one report lists.
const maxBreaks = 100

// ErrTampered is returned by callers (the CLI) when a report has breaks.
var ErrTampered = errors.New("audit log does not verify")

// ErrNothingVerified is returned by Verify when its scope holds no event,
// no seal and no anchor entry the caller can see: "OK" would then vouch
// for nothing.
var ErrNothingVerified = errors.New("nothing to verify")

// tenantVisibility is implemented by stores that can tell whether the
// caller may see a tenant (PostgreSQL row-level security).
type tenantVisibility interface {
	// tenantVisible reports whether the connection's role may see tenant,
	// and who that role is.
	tenantVisible(ctx context.Context, tenant string) (bool, string, error)
}

// Verify checks the events and seals opts selects: every event's hash
// against its content, every link to the previous event of its chain, the
// seal chain of each tenant, and (without Since or WorkflowID) that each
// seal's heads still exist and its event count still holds.
func Verify(ctx context.Context, store Store, opts VerifyOptions) (VerifyReport, error) {
	v := newVerifier(!opts.Since.IsZero())
	if err := v.setKeys(opts.PublicKeys, opts.RequireSigned); err != nil {
		return VerifyReport{}, fmt.Errorf("verify: %w", err)
	}
	if opts.Tenant != "" {
		if tv, ok := store.(tenantVisibility); ok {
			visible, role, err := tv.tenantVisible(ctx, opts.Tenant)
			if err != nil {
				return VerifyReport{}, fmt.Errorf("verify: %w", err)
			}
			if !visible {
				return VerifyReport{}, fmt.Errorf("%w: tenant %s is not visible to role %s (row-level security: no grant in audit_tenant_access); nothing was checked",
					ErrNothingVerified, opts.Tenant, role)
			}
		}
	}
	f := warden.AuditFilter{Tenant: opts.Tenant, WorkflowID: opts.WorkflowID, Since: opts.Since, Limit: MaxQueryLimit}
	for {
		page, err := store.Query(ctx, f)
		if err != nil {
			return VerifyReport{}, fmt.Errorf("verify: %w", err)
		}
		for _, e := range page {
			v.event(e)
		}
		if len(page) < MaxQueryLimit {
			break
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
	seals, err := store.Seals(ctx, opts.Tenant)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: %w", err)
	}
	v.seals(seals, opts.WorkflowID, opts.Since.IsZero() && opts.WorkflowID == "")
	if len(opts.Anchors) > 0 {
		v.checkAnchors(seals, opts.Anchors, opts.Tenant, v.keys)
	}
	r := v.report()
	if r.Events == 0 && r.Seals == 0 && r.Anchored == 0 && r.OK() {
		scope := "the audit log"
		if opts.Tenant != "" {
			scope = "tenant " + opts.Tenant
		}
		if opts.WorkflowID != "" {
			scope += " workflow " + opts.WorkflowID
		}
		if !opts.Since.IsZero() {
			scope += " since " + opts.Since.UTC().Format(time.RFC3339)
		}
		return r, fmt.Errorf("%w: %s has no events or seals you can see (it is empty, was wiped, or you may not read it); nothing was checked",
			ErrNothingVerified, scope)
	}
	return r, nil
}

// setKeys makes the verifier check seal signatures against keys.
func (v *verifier) setKeys(keys []PublicKey, requireSigned bool) error {
	ring, err := keyring(keys)
	if err != nil {
		return err
	}
	if requireSigned && len(ring) == 0 {
		return errors.New("requiring signed seals needs the public key(s) to check them with")
	}
	v.keys, v.requireSigned = ring, requireSigned
	return nil
}

// verifier accumulates what Verify and VerifyFile check.
type verifier struct {
	// partial allows a chain's first checked event to link to an event
	// outside the checked range.
	partial bool
	chains  map[chainKey]*chainState
	// hashes maps every checked event's hash to its seq.
	hashes map[[32]byte]int64
	// seqs holds each tenant's checked seqs, ascending.
	seqs   map[string][]int64
	events int64
	breaks []Break
	nseals int
	// sealedTo is each tenant's last seal's ToSeq.
	sealedTo map[string]int64
	// keys check signatures (none: not checked); requireSigned refuses
	// unsigned seals.
	keys          map[string]PublicKey
	requireSigned bool
	signed        int
	unsigned      int
	lastSigned    map[string]int64
	anchored      int
}

type chainState struct {
	hash string
	seq  int64
}

func newVerifier(partial bool) *verifier {
	return &verifier{partial: partial, chains: map[chainKey]*chainState{}, hashes: map[[32]byte]int64{},
		seqs: map[string][]int64{}, sealedTo: map[string]int64{}, lastSigned: map[string]int64{}}
}

func (v *verifier) add(b Break) {
	if len(v.breaks) < maxBreaks {
		v.breaks = append(v.breaks, b)
	}
}

// event checks one event, given in seq order.
func (v *verifier) event(e warden.AuditEvent) {
	v.events++
	v.seqs[e.Tenant] = append(v.seqs[e.Tenant], e.Seq)
	fail := func(format string, args ...any) {
		v.add(Break{Tenant: e.Tenant, WorkflowID: e.WorkflowID, Seq: e.Seq, EventID: e.ID, Problem: fmt.Sprintf(format, args...)})
	}
	k := chainKey{e.Tenant, e.WorkflowID}
	prev := v.chains[k]
	v.chains[k] = &chainState{hash: e.Hash, seq: e.Seq}
	if e.Hash == "" {
		fail("no hash: the row was not written by Warden's chained append (inserted directly, or before the hash chain existed)")
		return
	}
	want, err := EventHash(e)
	switch {
	case err != nil:
		fail("cannot encode the event: %v", err)
	case want != e.Hash:
		fail("content does not match its hash: a field of this row was changed (stored hash %s, content hashes to %s)", short(e.Hash), short(want))
	}
	if key, ok := hashKey(e.Hash); ok {
		if other, dup := v.hashes[key]; dup {
			fail("hash %s is also the hash of seq %d: a copied or forged row", short(e.Hash), other)
		}
		v.hashes[key] = e.Seq
	}
	switch {
	case prev == nil && e.PrevHash != "" && !v.partial:
		fail("first event of its chain, but prev_hash is %s: the events before it were deleted", short(e.PrevHash))
	case prev != nil && e.PrevHash != prev.hash:
		if prev.hash != "" && e.PrevHash == "" {
			fail("starts a new chain although seq %d of the same workflow precedes it: forged or reordered row", prev.seq)
		} else {
			fail("prev_hash %s does not match the previous event of the chain (seq %d, hash %s): an event between them was deleted or inserted, or rows were reordered",
				short(e.PrevHash), prev.seq, short(prev.hash))
		}
	}
}

func (v *verifier) report() VerifyReport {
	r := VerifyReport{Events: v.events, Chains: len(v.chains), Seals: v.nseals, Breaks: v.breaks,
		Signed: v.signed, Unsigned: v.unsigned, SignaturesChecked: len(v.keys) > 0, Anchored: v.anchored}
	for tenant, seqs := range v.seqs {
		to := v.sealedTo[tenant]
		r.Unsealed += int64(len(seqs) - sort.Search(len(seqs), func(i int) bool { return seqs[i] > to }))
	}
	if r.Breaks == nil {
		r.Breaks = []Break{}
	}
	return r
}

func hashKey(h string) ([32]byte, bool) {
	var k [32]byte
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

// short abbreviates a hash for messages.
func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}
