package audit

import (
	"bufio"
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

// Verifying an export file (VerifyFile), with the verifier of verify.go.

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
