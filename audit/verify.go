package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// ExportHeader is the first line of an export (`warden audit export`).
type ExportHeader struct {
	// Version is always 1.
	Version int    `json:"warden_export"`
	Tenant  string `json:"tenant,omitempty"`
	// Since and Until are the time range exported (empty: unbounded).
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
	// Complete is true when the export holds every event of its tenant(s),
	// so seal heads and counts can be checked too.
	Complete   bool      `json:"complete"`
	ExportedAt time.Time `json:"exported_at"`
}

// VerifyFile checks an export read from r: lines of events (AuditEvent
// JSON, as `warden audit -o jsonl` prints them), seals (Seal JSON) and an
// optional ExportHeader. Events must be in Seq order. A chain that starts
// mid-way (a time-ranged export) is accepted; seal heads and counts are
// checked only for a complete export.
func VerifyFile(r io.Reader) (VerifyReport, error) {
	return VerifyFileWith(r, FileOptions{})
}

// FileOptions are VerifyFileWith's checks beyond the hashes.
type FileOptions struct {
	// PublicKeys and RequireSigned check the seals' signatures as in
	// VerifyOptions.
	PublicKeys    []PublicKey
	RequireSigned bool
	// Anchors are compared with the export's seals (a complete export of
	// every tenant the anchors hold, or Tenant set).
	Anchors []*AnchorLog
}

// VerifyFileWith is VerifyFile with signature and anchor checks.
func VerifyFileWith(r io.Reader, opts FileOptions) (VerifyReport, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var (
		header       *ExportHeader
		seals        []Seal
		events       []warden.AuditEvent
		manifest     *ExportManifest
		manifestLine int
		afterLines   int
		rawSealOrder []string
		digest       = sha256.New()
	)
	for line := 1; sc.Scan(); line++ {
		raw := sc.Bytes()
		if len(raw) == 0 {
			continue
		}
		if manifest != nil {
			afterLines++
		}
		var probe struct {
			EventID  *string `json:"event_id"`
			Seal     *int64  `json:"seal_index"`
			Export   *int    `json:"warden_export"`
			Manifest *int    `json:"warden_manifest"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return VerifyReport{}, fmt.Errorf("verify file: line %d: %w", line, err)
		}
		if probe.Manifest == nil && manifest == nil {
			digest.Write(raw)
			digest.Write([]byte{'\n'})
		}
		var err error
		switch {
		case probe.Manifest != nil:
			if manifest != nil {
				err = errors.New("a second manifest")
				break
			}
			manifest, manifestLine = &ExportManifest{}, line
			err = json.Unmarshal(raw, manifest)
		case probe.Export != nil:
			header = &ExportHeader{}
			err = json.Unmarshal(raw, header)
		case probe.EventID != nil:
			var e warden.AuditEvent
			if err = json.Unmarshal(raw, &e); err == nil {
				events = append(events, e)
			}
		case probe.Seal != nil:
			var s Seal
			if err = json.Unmarshal(raw, &s); err == nil {
				seals = append(seals, s)
				rawSealOrder = append(rawSealOrder, s.Hash)
			}
		default:
			err = errors.New("neither an event, a seal nor an export header")
		}
		if err != nil {
			return VerifyReport{}, fmt.Errorf("verify file: line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return VerifyReport{}, fmt.Errorf("verify file: %w", err)
	}
	complete := header != nil && header.Complete
	v := newVerifier(!complete)
	if err := v.setKeys(opts.PublicKeys, opts.RequireSigned); err != nil {
		return VerifyReport{}, fmt.Errorf("verify file: %w", err)
	}
	for i, e := range events {
		if i > 0 && e.Seq <= events[i-1].Seq {
			v.add(Break{Tenant: e.Tenant, WorkflowID: e.WorkflowID, Seq: e.Seq, EventID: e.ID,
				Problem: fmt.Sprintf("out of order in the file: seq %d follows seq %d", e.Seq, events[i-1].Seq)})
		}
		// JSON text in the file may differ in spacing from the stored
		// canonical form; the hash is over the canonical form.
		if c, err := canonicalOptional(e.Args); err == nil {
			e.Args = c
		}
		if c, err := canonicalOptional(e.Result); err == nil {
			e.Result = c
		}
		v.event(e)
	}
	sort.SliceStable(seals, func(i, j int) bool {
		if seals[i].Tenant != seals[j].Tenant {
			return seals[i].Tenant < seals[j].Tenant
		}
		return seals[i].Index < seals[j].Index
	})
	v.seals(seals, "", complete)
	if len(opts.Anchors) > 0 {
		tenant := ""
		if header != nil {
			tenant = header.Tenant
		}
		v.checkAnchors(seals, opts.Anchors, tenant, v.keys)
	}
	manifestProblem := func(problem string) {
		v.add(Break{Tenant: "", Line: manifestLine, Problem: "export manifest: " + problem})
	}
	switch {
	case manifest == nil && opts.RequireSigned:
		manifestProblem("the file has none (exported by an older Warden, or the last line was removed): its completeness is not proven")
	case manifest != nil:
		if afterLines > 0 {
			manifestProblem(fmt.Sprintf("%d line(s) follow the manifest: added after export", afterLines))
		}
		want := ExportManifest{Digest: hex.EncodeToString(digest.Sum(nil)), Events: int64(len(events)), Seals: len(seals)}
		if header != nil {
			want.Tenant, want.Since, want.Until, want.Complete = header.Tenant, header.Since, header.Until, header.Complete
		}
		chains := map[chainKey]bool{}
		for _, e := range events {
			chains[chainKey{e.Tenant, e.WorkflowID}] = true
		}
		want.Chains = len(chains)
		if len(events) > 0 {
			want.FirstSeq, want.LastSeq = events[0].Seq, events[len(events)-1].Seq
		}
		if len(rawSealOrder) > 0 {
			want.LastSeal = rawSealOrder[len(rawSealOrder)-1]
		}
		for _, p := range checkManifest(*manifest, want, v.keys, opts.RequireSigned) {
			manifestProblem(p)
		}
	}
	rep := v.report()
	rep.Manifest = manifestState(manifest, len(v.keys) > 0)
	if rep.Events == 0 && rep.Seals == 0 && rep.Anchored == 0 && rep.OK() {
		return rep, fmt.Errorf("%w: the file holds no events and no seals", ErrNothingVerified)
	}
	return rep, nil
}

// manifestState describes an export's manifest for VerifyReport.Manifest.
func manifestState(m *ExportManifest, keys bool) string {
	switch {
	case m == nil:
		return "none"
	case m.Signature == "":
		return "unsigned"
	case keys:
		return "signed"
	default:
		return "signed, not checked (give --pubkey)"
	}
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
