package audit

import (
	"fmt"
	"sort"
)

// The verifier's checks of the seal chains, signatures and retention
// records.

// seals checks the seal chains; with full it also checks each seal's heads
// and event count against the checked events, and with workflow only the
// heads of that workflow. The chains are checked first, so an edited or
// missing seal is named before what its absence makes look missing.
// Events that retention seals record as dropped are not missing.
func (v *verifier) seals(seals []Seal, workflow string, full bool) {
	fail := func(s *Seal, format string, args ...any) {
		v.add(Break{Tenant: s.Tenant, SealIndex: s.Index, Problem: fmt.Sprintf(format, args...)})
	}
	var prev *Seal
	for i := range seals {
		s := &seals[i]
		v.nseals++
		if prev != nil && prev.Tenant != s.Tenant {
			prev = nil
		}
		wantIndex, wantPrev, wantFrom := int64(1), "", int64(0)
		if prev != nil {
			wantIndex, wantPrev, wantFrom = prev.Index+1, prev.Hash, prev.ToSeq
		}
		if h, err := SealHash(*s); err != nil || h != s.Hash {
			fail(s, "content does not match its hash: the seal was changed")
		}
		v.signature(s, func(format string, args ...any) { fail(s, format, args...) })
		switch {
		case s.Index != wantIndex:
			fail(s, "expected seal #%d here: a seal was deleted or inserted", wantIndex)
		case s.PrevHash != wantPrev:
			fail(s, "prev_hash %s does not match seal #%d's hash %s", short(s.PrevHash), wantIndex-1, short(wantPrev))
		case s.FromSeq != wantFrom:
			fail(s, "covers from seq %d, but the previous seal ended at %d", s.FromSeq, wantFrom)
		}
		switch {
		case s.Kind == SealKindRetention:
			checkRetentionRecord(s, func(format string, args ...any) { fail(s, format, args...) })
		case s.Kind != SealKindCheckpoint:
			fail(s, "unknown kind %q", s.Kind)
		case s.Retention != nil:
			fail(s, "a checkpoint seal must not carry a retention record")
		}
		v.sealedTo[s.Tenant] = s.ToSeq
		prev = s
	}

	dropped := retentions(seals)
	for i := range seals {
		s := &seals[i]
		if s.Kind == SealKindRetention {
			v.retainedGone(s, workflow, full, func(format string, args ...any) { fail(s, format, args...) })
			continue
		}
		for _, h := range s.Heads {
			if !full && (workflow == "" || h.WorkflowID != workflow) {
				continue
			}
			key, ok := hashKey(h.Hash)
			if seq, found := v.hashes[key]; ok && found && seq == h.Seq {
				continue
			}
			if dropped.explains(s.Tenant, h.WorkflowID, h.Seq, s.Index) {
				continue
			}
			fail(s, "head of workflow %s (seq %d, hash %s) is missing: the run or its last events were deleted", h.WorkflowID, h.Seq, short(h.Hash))
		}
		if full {
			seqs := v.seqs[s.Tenant]
			lo := sort.Search(len(seqs), func(i int) bool { return seqs[i] > s.FromSeq })
			hi := sort.Search(len(seqs), func(i int) bool { return seqs[i] > s.ToSeq })
			removed := dropped.removed[s.Tenant][s.Index]
			switch n := int64(hi - lo); {
			case n == s.EventCount-removed:
			case removed > 0:
				fail(s, "covers %d events (seq %d to %d), %d of them dropped by retention, but %d are there: events were deleted or inserted",
					s.EventCount, s.FromSeq+1, s.ToSeq, removed, n)
			default:
				fail(s, "covers %d events (seq %d to %d), but %d are there: events were deleted or inserted", s.EventCount, s.FromSeq+1, s.ToSeq, n)
			}
		}
	}
}

// signature checks s's signature (with keys) and that no unsigned seal
// follows a signed one.
func (v *verifier) signature(s *Seal, fail func(string, ...any)) {
	if s.Signature == "" {
		v.unsigned++
		switch last := v.lastSigned[s.Tenant]; {
		case v.requireSigned:
			fail("unsigned: signatures are required, and this seal was written without the sealing key (forged with database rights, or older than signing)")
		case last > 0:
			fail("unsigned, but seal #%d before it is signed: written without the sealing key (forged with database rights)", last)
		}
		return
	}
	v.signed++
	v.lastSigned[s.Tenant] = s.Index
	if len(v.keys) == 0 {
		return
	}
	if p := checkSignature(s, v.keys); p != "" {
		fail("%s", p)
	}
}

// checkRetentionRecord checks that a retention seal's shape and record
// hold together.
func checkRetentionRecord(s *Seal, fail func(string, ...any)) {
	r := s.Retention
	switch {
	case r == nil:
		fail("retention seal without a retention record")
		return
	case s.FromSeq != s.ToSeq || s.EventCount != 0 || len(s.Heads) != 0:
		fail("a retention seal covers no new events, but this one covers seq %d to %d (%d events, %d heads)", s.FromSeq+1, s.ToSeq, s.EventCount, len(s.Heads))
	}
	if d, err := RetentionDigest(r.Chains); err != nil || d != r.Digest {
		fail("retention digest %s does not match its dropped runs (%s)", short(r.Digest), short(d))
	}
	var chained, removed int64
	for _, c := range r.Chains {
		chained += c.Events
	}
	for _, rc := range r.Removed {
		removed += rc.Events
		if rc.SealIndex >= s.Index {
			fail("retention record counts events of seal #%d, which is not an earlier seal", rc.SealIndex)
		}
	}
	if chained != r.Events || removed != r.Events {
		fail("retention record says %d events were dropped, but its runs hold %d and its per-seal counts %d", r.Events, chained, removed)
	}
}

// retainedGone checks (with full, or for workflow) that the runs a
// retention seal dropped are gone.
func (v *verifier) retainedGone(s *Seal, workflow string, full bool, fail func(string, ...any)) {
	if s.Retention == nil {
		return
	}
	for _, c := range s.Retention.Chains {
		if !full && (workflow == "" || c.WorkflowID != workflow) {
			continue
		}
		key, ok := hashKey(c.HeadHash)
		if seq, found := v.hashes[key]; ok && found {
			fail("lists workflow %s as dropped, but its last event (seq %d, hash %s) is still there", c.WorkflowID, seq, short(c.HeadHash))
		}
	}
}

// droppedRuns indexes the retention seals of every tenant.
type droppedRuns struct {
	// chains lists, per chain, the runs retention seals dropped.
	chains map[chainKey][]droppedRun
	// removed counts, per tenant and checkpoint seal index, the covered
	// events retention seals dropped.
	removed map[string]map[int64]int64
}

type droppedRun struct {
	sealIndex         int64
	firstSeq, lastSeq int64
}

func retentions(seals []Seal) droppedRuns {
	d := droppedRuns{chains: map[chainKey][]droppedRun{}, removed: map[string]map[int64]int64{}}
	for _, s := range seals {
		if s.Kind != SealKindRetention || s.Retention == nil {
			continue
		}
		for _, c := range s.Retention.Chains {
			k := chainKey{s.Tenant, c.WorkflowID}
			d.chains[k] = append(d.chains[k], droppedRun{sealIndex: s.Index, firstSeq: c.FirstSeq, lastSeq: c.LastSeq})
		}
		if d.removed[s.Tenant] == nil {
			d.removed[s.Tenant] = map[int64]int64{}
		}
		for _, rc := range s.Retention.Removed {
			d.removed[s.Tenant][rc.SealIndex] += rc.Events
		}
	}
	return d
}

// explains reports whether a retention seal after seal index dropped the
// run of tenant's workflow holding seq.
func (d droppedRuns) explains(tenant, workflow string, seq, index int64) bool {
	for _, r := range d.chains[chainKey{tenant, workflow}] {
		if r.sealIndex > index && r.firstSeq <= seq && seq <= r.lastSeq {
			return true
		}
	}
	return false
}
