package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// retentionCutoff splits retentionFixture's runs: wf-old and wf-older end
// before it, wf-keep does not (its first event is old, its last is not).
var retentionCutoff = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// retentionFixture appends, for acme, wf-old (3 events) and wf-keep's
// first event, seals, then wf-older (2 events), wf-keep's last event and
// globex's old run wf-g, unsealed.
func retentionFixture(t *testing.T, s Store) {
	t.Helper()
	ctx := t.Context()
	old := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	ev := func(tenant, wf string, i int, at time.Time) warden.AuditEvent {
		return warden.AuditEvent{ID: fmt.Sprintf("%s-%d", wf, i), Type: warden.EventToolExecuted, Tenant: tenant,
			WorkflowID: wf, Step: i, Actor: "sandbox", Tool: "issue_refund", Args: json.RawMessage(`{"amount":12.5}`),
			OccurredAt: at.Add(time.Duration(i) * time.Minute)}
	}
	for i := range 3 {
		require.NoError(t, s.Append(ctx, ev("acme", "wf-old", i, old)))
	}
	require.NoError(t, s.Append(ctx, ev("acme", "wf-keep", 0, old)))
	_, err := s.Seal(ctx, "")
	require.NoError(t, err)
	require.NoError(t, s.Append(ctx, ev("acme", "wf-older", 0, old.Add(-24*time.Hour)), ev("acme", "wf-older", 1, old.Add(-24*time.Hour))))
	require.NoError(t, s.Append(ctx, ev("acme", "wf-keep", 1, retentionCutoff)))
	require.NoError(t, s.Append(ctx, ev("globex", "wf-g", 0, old)))
}

// runRetention pins Retain: it drops exactly the runs that end before the
// cutoff, records them in a retention seal, and the log still verifies,
// online and offline.
func runRetention(t *testing.T, b backend) {
	t.Parallel()
	s, loc := b.fresh(t)
	ctx := t.Context()
	retentionFixture(t, s)
	before, err := s.Query(ctx, warden.AuditFilter{})
	require.NoError(t, err)

	_, err = s.Retain(ctx, RetainOptions{Before: retentionCutoff})
	require.ErrorContains(t, err, "tenant is required")
	_, err = s.Retain(ctx, RetainOptions{Tenant: "acme", Before: time.Now().Add(time.Hour)})
	require.ErrorContains(t, err, "in the future")
	_, err = s.Retain(ctx, RetainOptions{Tenant: "acme", Before: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
	require.ErrorIs(t, err, ErrNothingToRetain)

	dry, err := s.Retain(ctx, RetainOptions{Tenant: "acme", Before: retentionCutoff, Actor: "dana", DryRun: true})
	require.NoError(t, err)
	after, err := s.Query(ctx, warden.AuditFilter{})
	require.NoError(t, err)
	require.Equal(t, before, after, "a dry run drops nothing")
	seals, err := s.Seals(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, seals, 1, "a dry run writes no seal")

	seal, err := s.Retain(ctx, RetainOptions{Tenant: "acme", Before: retentionCutoff, Actor: "dana"})
	require.NoError(t, err)
	// Only the times differ (and so the checkpoint sealed first, and the hashes).
	dry.SealedAt, dry.PrevHash, dry.Hash = seal.SealedAt, seal.PrevHash, seal.Hash
	require.Equal(t, dry, seal, "the dry run showed what the real run did")
	require.Equal(t, SealKindRetention, seal.Kind)
	require.EqualValues(t, 3, seal.Index, "checkpoint #1, the checkpoint Retain wrote first, then the retention seal")
	r := seal.Retention
	require.Equal(t, "dana", r.Actor)
	require.True(t, retentionCutoff.Equal(r.Cutoff))
	require.EqualValues(t, 5, r.Events)
	require.Len(t, r.Chains, 2)
	require.Equal(t, "wf-old", r.Chains[0].WorkflowID)
	require.EqualValues(t, 3, r.Chains[0].Events)
	require.Equal(t, before[2].Hash, r.Chains[0].HeadHash)
	require.Equal(t, before[2].Seq, r.Chains[0].LastSeq)
	require.Equal(t, before[0].Seq, r.Chains[0].FirstSeq)
	require.Equal(t, "wf-older", r.Chains[1].WorkflowID)
	require.EqualValues(t, 2, r.Chains[1].Events)
	require.Equal(t, []RemovedCount{{SealIndex: 1, Events: 3}, {SealIndex: 2, Events: 2}}, r.Removed)
	digest, err := RetentionDigest(r.Chains)
	require.NoError(t, err)
	require.Equal(t, digest, r.Digest)

	left, err := s.Query(ctx, warden.AuditFilter{Tenant: "acme"})
	require.NoError(t, err)
	require.Len(t, left, 2)
	for _, e := range left {
		require.Equal(t, "wf-keep", e.WorkflowID)
	}
	stored, err := s.Seals(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, stored, 3)
	require.Equal(t, seal, stored[2])
	globex, err := s.Query(ctx, warden.AuditFilter{Tenant: "globex"})
	require.NoError(t, err)
	require.Len(t, globex, 1, "another tenant's old run stays")

	_, err = s.Retain(ctx, RetainOptions{Tenant: "acme", Before: retentionCutoff})
	require.ErrorIs(t, err, ErrNothingToRetain)

	// The log verifies: whole, by workflow (a dropped one too), and offline.
	for _, opts := range []VerifyOptions{{}, {Tenant: "acme"}, {WorkflowID: "wf-old"}, {WorkflowID: "wf-keep"}} {
		report, err := Verify(ctx, s, opts)
		require.NoError(t, err)
		require.True(t, report.OK(), "%+v: %v", opts, report.Breaks)
	}
	var buf bytes.Buffer
	_, err = Export(ctx, s, &buf, ExportOptions{Tenant: "acme"})
	require.NoError(t, err)
	require.Contains(t, buf.String(), `"kind":"retention"`)
	report, err := VerifyFile(&buf)
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.EqualValues(t, 2, report.Events)

	// Appends and seals go on; a plain DELETE is still refused.
	require.NoError(t, s.Append(ctx, warden.AuditEvent{ID: "wf-keep-2", Type: warden.EventRunFinished, Tenant: "acme", WorkflowID: "wf-keep"}))
	_, err = s.Seal(ctx, "")
	require.NoError(t, err)
	report, err = Verify(ctx, s, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.Zero(t, report.Unsealed)
	for _, stmt := range []string{"DELETE FROM audit_events WHERE workflow_id = 'wf-keep'", "DELETE FROM audit_events"} {
		require.ErrorContains(t, b.exec(t, loc, stmt), "append-only", stmt)
	}
	require.ErrorContains(t, b.exec(t, loc, "DELETE FROM audit_seals WHERE kind = 'retention'"), "append-only")
}

// runRetentionTamper: after a retention, every deletion or edit the
// retention seal does not explain is still reported, and named.
func runRetentionTamper(t *testing.T, b backend) {
	// forge rewrites the retention seal's record with edit and, like a
	// forger who knows the format, recomputes its hash (and, with digest,
	// its digest).
	forge := func(edit func(*Retention), digest bool) func(*testing.T, Store) string {
		return func(t *testing.T, s Store) string {
			seals, err := s.Seals(t.Context(), "acme")
			require.NoError(t, err)
			seal := seals[2]
			require.Equal(t, SealKindRetention, seal.Kind)
			edit(seal.Retention)
			if digest {
				seal.Retention.Digest, err = RetentionDigest(seal.Retention.Chains)
				require.NoError(t, err)
			}
			seal.Hash, err = SealHash(seal)
			require.NoError(t, err)
			raw, err := json.Marshal(seal.Retention)
			require.NoError(t, err)
			return fmt.Sprintf("UPDATE audit_seals SET retention = '%s', hash = '%s' WHERE tenant = 'acme' AND seal_index = %d", raw, seal.Hash, seal.Index)
		}
	}
	sql := func(q string) func(*testing.T, Store) string { return func(*testing.T, Store) string { return q } }
	for _, tc := range []struct {
		name      string
		sql       func(*testing.T, Store) string
		opts      VerifyOptions
		eventID   string
		sealIndex int64
		problem   string
		// also must be named by a later break.
		also string
	}{
		{name: "a whole run deleted without a retention seal", sql: sql("DELETE FROM audit_events WHERE workflow_id = 'wf-keep'"),
			sealIndex: 1, problem: "head of workflow wf-keep"},
		{name: "a row deleted inside a remaining run", sql: sql("DELETE FROM audit_events WHERE event_id = 'wf-keep-1'"),
			sealIndex: 2, problem: "head of workflow wf-keep"},
		{name: "the retention seal deleted", sql: sql("DELETE FROM audit_seals WHERE kind = 'retention'"),
			sealIndex: 1, problem: "head of workflow wf-old"},
		{name: "the retention seal deleted before a later one", sql: func(t *testing.T, s Store) string {
			require.NoError(t, s.Append(t.Context(), warden.AuditEvent{ID: "late", Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: "wf-late"}))
			_, err := s.Seal(t.Context(), "acme")
			require.NoError(t, err)
			return "DELETE FROM audit_seals WHERE kind = 'retention'"
		}, sealIndex: 4, problem: "expected seal #3 here"},
		{name: "the retention record edited", sql: sql("UPDATE audit_seals SET retention = NULL WHERE kind = 'retention'"),
			sealIndex: 3, problem: "the seal was changed"},
		{name: "a forged record omits a dropped run", sql: forge(func(r *Retention) {
			r.Chains, r.Events, r.Removed = r.Chains[:1], 3, r.Removed[:1]
		}, true), sealIndex: 2, problem: "head of workflow wf-older"},
		{name: "a forged record lists a run that is still there", sql: forge(func(r *Retention) {
			r.Chains = append(r.Chains, RetainedChain{WorkflowID: "wf-keep", Events: 2, FirstSeq: 4, LastSeq: 7, HeadHash: "x"})
		}, false), sealIndex: 3, problem: "retention digest"},
		{name: "a consistent forged record lists a run that is still there", sql: func(t *testing.T, s Store) string {
			keep, err := s.Query(t.Context(), warden.AuditFilter{WorkflowID: "wf-keep"})
			require.NoError(t, err)
			return forge(func(r *Retention) {
				r.Chains = append(r.Chains, RetainedChain{WorkflowID: "wf-keep", Events: 2, FirstSeq: keep[0].Seq,
					LastSeq: keep[1].Seq, HeadHash: keep[1].Hash})
				r.Events += 2
				r.Removed[0].Events++
				r.Removed[1].Events++
			}, true)(t, s)
		}, sealIndex: 1, problem: "4 of them dropped by retention, but 1 are there",
			also: "lists workflow wf-keep as dropped, but its last event"},
		{name: "a forged record claims fewer events than are gone", sql: forge(func(r *Retention) {
			r.Chains[0].Events, r.Events, r.Removed[0].Events = 2, 4, 2
		}, true), sealIndex: 1, problem: "2 of them dropped by retention, but 1 are there"},
		{name: "a run dropped by a superuser and added to a forged record", sql: func(t *testing.T, s Store) string {
			// The forger recomputes the record, digest and hash, but the
			// next seal still names the original retention seal.
			require.NoError(t, s.Append(t.Context(), warden.AuditEvent{ID: "late", Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: "wf-late"}))
			_, err := s.Seal(t.Context(), "acme")
			require.NoError(t, err)
			keep, err := s.Query(t.Context(), warden.AuditFilter{WorkflowID: "wf-keep"})
			require.NoError(t, err)
			return forge(func(r *Retention) {
				r.Chains = append(r.Chains, RetainedChain{WorkflowID: "wf-keep", Events: 2, FirstSeq: keep[0].Seq,
					LastSeq: keep[1].Seq, HeadHash: keep[1].Hash})
				r.Events += 2
				r.Removed[0].Events++
				r.Removed[1].Events++
			}, true)(t, s) + "; DELETE FROM audit_events WHERE workflow_id = 'wf-keep'"
		}, sealIndex: 4, problem: "does not match seal #3's hash"},
		{name: "checked by workflow: a run deleted without a retention seal", sql: sql("DELETE FROM audit_events WHERE workflow_id = 'wf-keep'"),
			opts: VerifyOptions{WorkflowID: "wf-keep"}, sealIndex: 1, problem: "head of workflow wf-keep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, loc := b.fresh(t)
			ctx := t.Context()
			retentionFixture(t, s)
			_, err := s.Retain(ctx, RetainOptions{Tenant: "acme", Before: retentionCutoff, Actor: "dana"})
			require.NoError(t, err)
			report, err := Verify(ctx, s, VerifyOptions{})
			require.NoError(t, err)
			require.True(t, report.OK(), "%v", report.Breaks)

			b.superuser(t, loc, tc.sql(t, s))
			report, err = Verify(ctx, s, tc.opts)
			require.NoError(t, err)
			require.False(t, report.OK(), "tampering went unnoticed")
			first := report.Breaks[0]
			t.Log(report.Breaks)
			require.Equal(t, tc.sealIndex, first.SealIndex, "%v", report.Breaks)
			require.Equal(t, tc.eventID, first.EventID, "%v", report.Breaks)
			require.Contains(t, first.Problem, tc.problem, "%v", report.Breaks)
			if tc.also != "" {
				require.True(t, slices.ContainsFunc(report.Breaks, func(b Break) bool { return strings.Contains(b.Problem, tc.also) }), "%v", report.Breaks)
			}

			if tc.opts.Tenant == "" && tc.opts.WorkflowID == "" && tc.opts.Since.IsZero() {
				var buf bytes.Buffer
				_, err := Export(ctx, s, &buf, ExportOptions{})
				require.NoError(t, err)
				offline, err := VerifyFile(&buf)
				require.NoError(t, err)
				require.False(t, offline.OK())
				require.Equal(t, first, offline.Breaks[0])
			}
		})
	}
}

func TestRetentionRecordEncoding(t *testing.T) {
	t.Parallel()
	// The hashed record is canonical JSON: the documented example must
	// hash as documented.
	r := Retention{Cutoff: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Actor: "dana",
		Chains:  []RetainedChain{{WorkflowID: "wf-old", Events: 3, FirstSeq: 1, LastSeq: 3, HeadHash: strings.Repeat("a", 64)}},
		Removed: []RemovedCount{{SealIndex: 1, Events: 3}}, Events: 3}
	d, err := RetentionDigest(r.Chains)
	require.NoError(t, err)
	want, err := CanonicalJSON([]byte(`[{"workflow_id":"wf-old","events":3,"first_seq":1,"last_seq":3,"head_hash":"` + strings.Repeat("a", 64) + `"}]`))
	require.NoError(t, err)
	require.Equal(t, `[{"events":3,"first_seq":1,"head_hash":"`+strings.Repeat("a", 64)+`","last_seq":3,"workflow_id":"wf-old"}]`, string(want))
	require.Len(t, d, 64)
	checkpoint := Seal{Tenant: "acme", Index: 1, Kind: SealKindCheckpoint, SealedAt: r.Cutoff}
	h1, err := SealHash(checkpoint)
	require.NoError(t, err)
	r.Digest = d
	withRecord := checkpoint
	withRecord.Kind, withRecord.Retention = SealKindRetention, &r
	h2, err := SealHash(withRecord)
	require.NoError(t, err)
	require.NotEqual(t, h1, h2)
}
