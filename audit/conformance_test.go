package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// backend is what the conformance suite needs from one Store implementation.
type backend struct {
	// newDB returns the location (DSN or file path) of a fresh, empty database.
	newDB func(t testing.TB) string
	// open opens a store at a location.
	open func(ctx context.Context, loc string) (Store, error)
	// exec runs sql on its own connection to loc, outside the Store API.
	exec func(t testing.TB, loc, sql string) error
	// count runs a SELECT count(*) query on its own connection to loc.
	count func(t testing.TB, loc, sql string) int64
	// truncate says whether the database has TRUNCATE.
	truncate bool
	// superuser runs sql as the database's owner would, bypassing the
	// append-only triggers (to tamper).
	superuser func(t testing.TB, loc, sql string)
}

// openAt opens a store at loc and closes it when the test ends.
func (b backend) openAt(t testing.TB, loc string) Store {
	t.Helper()
	s, err := b.open(t.Context(), loc)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// fresh opens a store on a new empty database.
func (b backend) fresh(t testing.TB) (Store, string) {
	t.Helper()
	loc := b.newDB(t)
	return b.openAt(t, loc), loc
}

// runConformance pins the behaviour every Store must have.
func runConformance(t *testing.T, b backend) {
	t.Run("RoundTripEveryField", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		full := fullEvent("evt-full")
		minimal := warden.AuditEvent{ID: "evt-min", Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: "wf-1"}
		before := time.Now().UTC().Truncate(time.Microsecond)
		require.NoError(t, s.Append(ctx, full, minimal))
		after := time.Now().UTC()

		got, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Positive(t, got[0].Seq)
		require.Greater(t, got[1].Seq, got[0].Seq)

		want := full
		want.Seq = got[0].Seq
		want.OccurredAt = full.OccurredAt.UTC().Truncate(time.Microsecond)
		want.Hash = got[0].Hash
		// The store assigns seq and recorded_at, and hashes both (version 2).
		require.Equal(t, EventHashVersion, got[0].HashVersion)
		require.False(t, got[0].RecordedAt.Before(before), "recorded_at %v before the append began", got[0].RecordedAt)
		require.False(t, got[0].RecordedAt.After(after), "recorded_at %v after the append returned", got[0].RecordedAt)
		require.Equal(t, time.UTC, got[0].RecordedAt.Location())
		want.RecordedAt, want.HashVersion = got[0].RecordedAt, got[0].HashVersion
		require.Equal(t, canonical(t, want), canonical(t, got[0]))
		require.Empty(t, got[0].PrevHash, "first of its chain")
		wantHash, err := EventHash(got[0])
		require.NoError(t, err)
		require.Equal(t, wantHash, got[0].Hash)
		require.Equal(t, time.UTC, got[0].OccurredAt.Location())

		m := got[1]
		require.Nil(t, m.Args, "empty args read back as nil")
		require.Nil(t, m.Result, "empty result read back as nil")
		require.Nil(t, m.Reasons, "empty reasons read back as nil")
		require.Equal(t, time.UTC, m.OccurredAt.Location())
		require.False(t, m.OccurredAt.Before(before), "zero OccurredAt is set to now")
		require.False(t, m.OccurredAt.After(after), "zero OccurredAt is set to now")
		require.NotEmpty(t, m.Hash)
		require.Equal(t, got[0].Hash, m.PrevHash, "same workflow, same chain")
		require.Equal(t, got[0].RecordedAt, m.RecordedAt, "one append, one recorded_at")
		m.Seq, m.OccurredAt, m.Hash, m.PrevHash, m.RecordedAt, m.HashVersion = 0, time.Time{}, "", "", time.Time{}, 0
		require.Equal(t, minimal, m)
	})

	t.Run("JSONValues", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		cases := []json.RawMessage{
			json.RawMessage(`null`),
			json.RawMessage(`"text"`),
			json.RawMessage(`[1,2,{"nested":[true,false]}]`),
			json.RawMessage(` { "unicode" : "é ✓ \u00e9 \\u0000", "n" : 1.5e3 } `),
			// Values jsonb rewrites: the hash must survive the round trip.
			json.RawMessage(`{"big":123456789012345678901234567890,"tiny":1e-7,"neg0":-0.0,"frac":2.50,"ctl":"\u0001\t\n<>&\u2028","emoji":"\ud83d\ude00","dup":1,"dup":2}`),
		}
		for i, raw := range cases {
			e := warden.AuditEvent{ID: fmt.Sprint("evt-json-", i), Type: warden.EventToolExecuted, Tenant: "acme", WorkflowID: "wf-json", Args: raw, Result: raw}
			require.NoError(t, s.Append(ctx, e))
		}
		got, err := s.Query(ctx, warden.AuditFilter{WorkflowID: "wf-json"})
		require.NoError(t, err)
		require.Len(t, got, len(cases))
		for i, raw := range cases {
			require.JSONEq(t, string(raw), string(got[i].Args))
			require.JSONEq(t, string(raw), string(got[i].Result))
		}
		report, err := Verify(ctx, s, VerifyOptions{WorkflowID: "wf-json"})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		for _, reasons := range [][]string{{}, {""}, {"a", "b, with comma", `"quoted"`}} {
			id := fmt.Sprintf("evt-reasons-%d", len(reasons))
			require.NoError(t, s.Append(ctx, warden.AuditEvent{ID: id, Type: warden.EventPolicyDecided, Tenant: "acme", WorkflowID: "wf-reasons", Reasons: reasons}))
		}
		got, err = s.Query(ctx, warden.AuditFilter{WorkflowID: "wf-reasons"})
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.Nil(t, got[0].Reasons)
		require.Equal(t, []string{""}, got[1].Reasons)
		require.Equal(t, []string{"a", "b, with comma", `"quoted"`}, got[2].Reasons)
	})

	t.Run("IdempotentReappend", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		events := sampleEvents(3)
		require.NoError(t, s.Append(ctx, events...))
		first, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, first, 3)

		// A retry of the same write, even one whose content drifted, keeps
		// the first row as it was.
		retried := sampleEvents(3)
		for i := range retried {
			retried[i].Message = "changed on retry"
		}
		require.NoError(t, s.Append(ctx, retried...))
		require.NoError(t, s.Append(ctx, events...))
		again, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Equal(t, first, again)
	})

	t.Run("BatchWithExistingAndNewID", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		events := sampleEvents(2)
		require.NoError(t, s.Append(ctx, events[0]))
		before, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, before, 1)

		require.NoError(t, s.Append(ctx, events[0], events[1]))
		got, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, before[0], got[0], "existing row unchanged")
		require.Equal(t, events[1].ID, got[1].ID)
		require.Greater(t, got[1].Seq, got[0].Seq)
	})

	t.Run("DuplicateIDWithinBatch", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		e := sampleEvents(1)[0]
		dup := e
		dup.Message = "second copy"
		require.NoError(t, s.Append(ctx, e, dup))
		got, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, e.Message, got[0].Message, "the first copy wins")
	})

	t.Run("BatchOrderIsSeqOrder", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		events := sampleEvents(50)
		require.NoError(t, s.Append(ctx, events...))
		got, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, got, 50)
		for i := range got {
			require.Equal(t, events[i].ID, got[i].ID)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		mk := func(id, tenant, wf string, typ warden.EventType, tool, decision string, minutes int) warden.AuditEvent {
			return warden.AuditEvent{ID: id, Type: typ, Tenant: tenant, WorkflowID: wf, Tool: tool, Decision: decision,
				OccurredAt: base.Add(time.Duration(minutes) * time.Minute)}
		}
		// Appended out of time order on purpose: results follow seq, not occurred_at.
		all := []warden.AuditEvent{
			mk("e1", "acme", "wf-a", warden.EventRunStarted, "", "", 5),
			mk("e2", "acme", "wf-a", warden.EventPolicyDecided, "shell", warden.VerdictAllow, 1),
			mk("e3", "acme", "wf-b", warden.EventPolicyDecided, "http_get", warden.VerdictDeny, 9),
			mk("e4", "globex", "wf-c", warden.EventPolicyDecided, "shell", warden.VerdictRequireApproval, 3),
			mk("e5", "globex", "wf-c", warden.EventToolExecuted, "shell", "", 7),
			mk("e6", "acme", "wf-a", warden.EventToolExecuted, "shell", "", 10),
		}
		require.NoError(t, s.Append(ctx, all[:3]...))
		require.NoError(t, s.Append(ctx, all[3:]...))

		ids := func(f warden.AuditFilter) []string {
			t.Helper()
			got, err := s.Query(ctx, f)
			require.NoError(t, err)
			out := []string{}
			for i, e := range got {
				if i > 0 {
					require.Greater(t, e.Seq, got[i-1].Seq, "seq ascending")
				}
				out = append(out, e.ID)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    warden.AuditFilter
			want []string
		}{
			{"none", warden.AuditFilter{}, []string{"e1", "e2", "e3", "e4", "e5", "e6"}},
			{"tenant", warden.AuditFilter{Tenant: "globex"}, []string{"e4", "e5"}},
			{"workflow", warden.AuditFilter{WorkflowID: "wf-a"}, []string{"e1", "e2", "e6"}},
			{"tool", warden.AuditFilter{Tool: "shell"}, []string{"e2", "e4", "e5", "e6"}},
			{"decision", warden.AuditFilter{Decision: warden.VerdictDeny}, []string{"e3"}},
			{"type", warden.AuditFilter{Type: warden.EventPolicyDecided}, []string{"e2", "e3", "e4"}},
			{"since inclusive", warden.AuditFilter{Since: base.Add(7 * time.Minute)}, []string{"e3", "e5", "e6"}},
			{"since other zone", warden.AuditFilter{Since: base.Add(7 * time.Minute).In(time.FixedZone("UTC+5", 5*3600))}, []string{"e3", "e5", "e6"}},
			{"limit", warden.AuditFilter{Limit: 2}, []string{"e1", "e2"}},
			{"combined", warden.AuditFilter{Tenant: "acme", Tool: "shell", Since: base.Add(2 * time.Minute)}, []string{"e6"}},
			{"no match", warden.AuditFilter{Tenant: "nobody"}, []string{}},
		} {
			require.Equal(t, tc.want, ids(tc.f), tc.name)
		}
	})

	t.Run("LargeBatchAndLimits", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		events := sampleEvents(MaxQueryLimit + 1)
		require.NoError(t, s.Append(ctx, events...))

		got, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, got, DefaultQueryLimit, "zero limit means the default")

		got, err = s.Query(ctx, warden.AuditFilter{Limit: 5 * MaxQueryLimit})
		require.NoError(t, err)
		require.Len(t, got, MaxQueryLimit, "limit is capped")
		for i := range got {
			require.Equal(t, events[i].ID, got[i].ID)
		}

		_, err = s.Query(ctx, warden.AuditFilter{Limit: -1})
		require.ErrorContains(t, err, "limit")
	})

	t.Run("Has", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		ok, err := s.Has(ctx, "evt-0")
		require.NoError(t, err)
		require.False(t, ok)
		require.NoError(t, s.Append(ctx, sampleEvents(1)...))
		ok, err = s.Has(ctx, "evt-0")
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.Has(ctx, "evt-1")
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("EmptyAppend", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		require.NoError(t, s.Append(t.Context()))
		got, err := s.Query(t.Context(), warden.AuditFilter{})
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("ValidationNamesTheField", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		valid := sampleEvents(1)[0]
		for _, tc := range []struct {
			field  string
			mutate func(*warden.AuditEvent)
		}{
			{"event_id", func(e *warden.AuditEvent) { e.ID = "" }},
			{"event_id", func(e *warden.AuditEvent) { e.ID = "  " }},
			{"event_type", func(e *warden.AuditEvent) { e.Type = "" }},
			{"tenant", func(e *warden.AuditEvent) { e.Tenant = "" }},
			{"workflow_id", func(e *warden.AuditEvent) { e.WorkflowID = "" }},
			{"args", func(e *warden.AuditEvent) { e.Args = json.RawMessage(`{"unterminated"`) }},
			{"result", func(e *warden.AuditEvent) { e.Result = json.RawMessage(`nope`) }},
			{"result", func(e *warden.AuditEvent) { e.Result = json.RawMessage(`{"stdout":"a\u0000b"}`) }},
			{"args", func(e *warden.AuditEvent) { e.Args = json.RawMessage("\"\xff\"") }},
			{"message", func(e *warden.AuditEvent) { e.Message = "nul\x00byte" }},
			{"tool", func(e *warden.AuditEvent) { e.Tool = "bad\xffutf8" }},
			{"reasons", func(e *warden.AuditEvent) { e.Reasons = []string{"ok", "nul\x00"} }},
			{"occurred_at", func(e *warden.AuditEvent) { e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		} {
			bad := valid
			bad.ID = "evt-bad"
			tc.mutate(&bad)
			// The valid event in the same batch is not written either.
			err := s.Append(ctx, valid, bad)
			require.ErrorIs(t, err, ErrInvalidEvent, tc.field)
			require.ErrorContains(t, err, tc.field)
		}
		got, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("DatabaseRejectsChanges", func(t *testing.T) {
		t.Parallel()
		s, loc := b.fresh(t)
		ctx := t.Context()
		require.NoError(t, s.Append(ctx, sampleEvents(3)...))
		before, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)

		statements := []string{
			"UPDATE audit_events SET message = 'tampered'",
			"UPDATE audit_events SET event_id = 'forged' WHERE seq = (SELECT min(seq) FROM audit_events)",
			"DELETE FROM audit_events WHERE event_id = 'evt-1'",
			"DELETE FROM audit_events",
		}
		if b.truncate {
			statements = append(statements, "TRUNCATE audit_events")
		}
		for _, stmt := range statements {
			err := b.exec(t, loc, stmt)
			require.Error(t, err, stmt)
			require.ErrorContains(t, err, "append-only", stmt)
		}
		after, err := s.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Equal(t, before, after)
		// Inserting through any client is still possible, but such a row
		// has no hash and verify reports it.
		require.NoError(t, b.exec(t, loc, "INSERT INTO audit_events (event_id, event_type, tenant, workflow_id, occurred_at) "+
			"VALUES ('evt-raw', 'run_started', 'acme', 'wf-raw', '2026-01-02T03:04:05.000000Z')"))
		ok, err := s.Has(ctx, "evt-raw")
		require.NoError(t, err)
		require.True(t, ok)
		report, err := Verify(ctx, s, VerifyOptions{})
		require.NoError(t, err)
		require.False(t, report.OK())
		require.Equal(t, "evt-raw", report.Breaks[0].EventID)
		require.Contains(t, report.Breaks[0].Problem, "no hash")

		require.NoError(t, s.Append(ctx, sampleEvents(1)...))
		_, err = s.Seal(ctx, "")
		require.NoError(t, err)
		for _, stmt := range []string{"UPDATE audit_seals SET event_count = 0", "DELETE FROM audit_seals"} {
			require.ErrorContains(t, b.exec(t, loc, stmt), "append-only", stmt)
		}
	})

	t.Run("ChainLinksEachWorkflow", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		a, c := sampleEvents(3), sampleEvents(2)
		for i := range c {
			c[i].ID, c[i].WorkflowID = fmt.Sprint("other-", i), "wf-other"
		}
		require.NoError(t, s.Append(ctx, a[0], c[0]))
		require.NoError(t, s.Append(ctx, a[1], a[2], c[1]))
		got, err := s.Query(ctx, warden.AuditFilter{WorkflowID: "wf-sample"})
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.Empty(t, got[0].PrevHash)
		require.Equal(t, got[0].Hash, got[1].PrevHash)
		require.Equal(t, got[1].Hash, got[2].PrevHash)
		other, err := s.Query(ctx, warden.AuditFilter{WorkflowID: "wf-other"})
		require.NoError(t, err)
		require.Empty(t, other[0].PrevHash, "another workflow has its own chain")
		require.Equal(t, other[0].Hash, other[1].PrevHash)

		// A retry (same IDs, even with drifted content) changes nothing.
		retried := sampleEvents(3)
		retried[1].Message = "drifted"
		require.NoError(t, s.Append(ctx, retried...))
		again, err := s.Query(ctx, warden.AuditFilter{WorkflowID: "wf-sample"})
		require.NoError(t, err)
		require.Equal(t, got, again)
		report, err := Verify(ctx, s, VerifyOptions{})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.EqualValues(t, 5, report.Events)
		require.Equal(t, 2, report.Chains)
	})

	t.Run("ConcurrentAppendsToOneChainStayLinear", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		const writers, perWriter = 8, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*(perWriter*2+1))
		for w := range writers {
			wg.Go(func() {
				for n := range perWriter {
					e := warden.AuditEvent{ID: fmt.Sprintf("race-%d-%d", w, n), Type: warden.EventApprovalDecided,
						Tenant: "acme", WorkflowID: fmt.Sprint("wf-race-", n%3), Step: n}
					errs <- s.Append(ctx, e)
					errs <- s.Append(ctx, e) // a retry racing the others
				}
				if w%2 == 0 {
					_, err := s.Seal(ctx, "acme")
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		_, err := s.Seal(ctx, "")
		require.NoError(t, err)
		report, err := Verify(ctx, s, VerifyOptions{})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.EqualValues(t, writers*perWriter, report.Events)
		require.Zero(t, report.Unsealed)
	})

	t.Run("Seals", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		seals, err := s.Seal(ctx, "")
		require.NoError(t, err)
		require.Empty(t, seals, "nothing to seal")
		require.NoError(t, s.Append(ctx, sampleEvents(3)...))
		require.NoError(t, s.Append(ctx, warden.AuditEvent{ID: "g1", Type: warden.EventRunStarted, Tenant: "globex", WorkflowID: "wf-g"}))
		seals, err = s.Seal(ctx, "")
		require.NoError(t, err)
		require.Len(t, seals, 2)
		acme := seals[0]
		require.Equal(t, "acme", acme.Tenant)
		require.EqualValues(t, 1, acme.Index)
		require.EqualValues(t, 3, acme.EventCount)
		require.Len(t, acme.Heads, 1)
		again, err := s.Seal(ctx, "acme")
		require.NoError(t, err)
		require.Empty(t, again, "no new events, no seal")

		require.NoError(t, s.Append(ctx, warden.AuditEvent{ID: "a-new", Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: "wf-new"}))
		report, err := Verify(ctx, s, VerifyOptions{})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.EqualValues(t, 1, report.Unsealed)
		next, err := s.Seal(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, next, 1)
		require.EqualValues(t, 2, next[0].Index)
		require.Equal(t, acme.Hash, next[0].PrevHash)
		require.Equal(t, acme.ToSeq, next[0].FromSeq)
		stored, err := s.Seals(ctx, "acme")
		require.NoError(t, err)
		require.Equal(t, []Seal{acme, next[0]}, stored)
		report, err = Verify(ctx, s, VerifyOptions{Tenant: "acme"})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.Equal(t, 2, report.Seals)
		require.Zero(t, report.Unsealed)
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		ctx := t.Context()
		const (
			writers   = 8
			batches   = 20
			batchSize = 5
		)
		shared := sampleEvents(4)
		reversed := []warden.AuditEvent{shared[3], shared[2], shared[1], shared[0]}
		var wg sync.WaitGroup
		errs := make(chan error, writers*(batches+1))
		for w := range writers {
			wg.Go(func() {
				for n := range batches {
					batch := make([]warden.AuditEvent, batchSize)
					for i := range batch {
						batch[i] = warden.AuditEvent{
							ID: fmt.Sprintf("w%d-b%d-e%d", w, n, i), Type: warden.EventToolExecuted,
							Tenant: "acme", WorkflowID: fmt.Sprint("wf-", w), Step: n,
						}
					}
					errs <- s.Append(ctx, batch...)
				}
				// Every writer also retries the same events, half of them in
				// the opposite order.
				if w%2 == 0 {
					errs <- s.Append(ctx, shared...)
				} else {
					errs <- s.Append(ctx, reversed...)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		got, err := s.Query(ctx, warden.AuditFilter{Limit: MaxQueryLimit})
		require.NoError(t, err)
		require.Len(t, got, writers*batches*batchSize+len(shared))
		seen := map[string]bool{}
		for i, e := range got {
			require.False(t, seen[e.ID], "duplicate %s", e.ID)
			seen[e.ID] = true
			if i > 0 {
				require.Greater(t, e.Seq, got[i-1].Seq)
			}
		}
		// Each writer's batches landed whole and in order.
		for w := range writers {
			mine, err := s.Query(ctx, warden.AuditFilter{WorkflowID: fmt.Sprint("wf-", w)})
			require.NoError(t, err)
			require.Len(t, mine, batches*batchSize)
			for i, e := range mine {
				require.Equal(t, fmt.Sprintf("w%d-b%d-e%d", w, i/batchSize, i%batchSize), e.ID)
			}
		}
	})

	t.Run("MigrationsAreIdempotent", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		loc := b.newDB(t)
		first, err := b.open(ctx, loc)
		require.NoError(t, err)
		require.NoError(t, first.Append(ctx, sampleEvents(2)...))
		require.NoError(t, first.Close())

		second := b.openAt(t, loc)
		got, err := second.Query(ctx, warden.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, got, 2, "reopening keeps the rows")
		third := b.openAt(t, loc)
		require.NoError(t, third.Append(ctx, sampleEvents(3)...))

		migrations, err := loadMigrations(b.migrationsDir())
		require.NoError(t, err)
		require.EqualValues(t, len(migrations), b.count(t, loc, "SELECT count(*) FROM schema_migrations"))
		require.EqualValues(t, 3, b.count(t, loc, "SELECT count(*) FROM audit_events"))
	})

	t.Run("ConcurrentOpens", func(t *testing.T) {
		t.Parallel()
		loc := b.newDB(t)
		var wg sync.WaitGroup
		stores := make([]Store, 4)
		errs := make([]error, 4)
		for i := range stores {
			wg.Go(func() { stores[i], errs[i] = b.open(t.Context(), loc) })
		}
		wg.Wait()
		for i, s := range stores {
			require.NoError(t, errs[i])
			require.NoError(t, s.Append(t.Context(), warden.AuditEvent{ID: strconv.Itoa(i), Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: "wf"}))
			require.NoError(t, s.Close())
		}
		migrations, err := loadMigrations(b.migrationsDir())
		require.NoError(t, err)
		require.EqualValues(t, len(migrations), b.count(t, loc, "SELECT count(*) FROM schema_migrations"))
		require.EqualValues(t, 4, b.count(t, loc, "SELECT count(*) FROM audit_events"))
	})

	t.Run("TwoStoresAppendToOneChain", func(t *testing.T) {
		t.Parallel()
		// Two workers (stores) write one run; each remembers the heads it
		// wrote, which the other moves. Then a retention drops the run and
		// the workflow ID is used again: it starts a new chain.
		first, loc := b.fresh(t)
		second := b.openAt(t, loc)
		ctx := t.Context()
		old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		// Turn by turn: each store's remembered head is moved by the other.
		for n, s := range []Store{first, second, first, second, first} {
			require.NoError(t, s.Append(ctx, warden.AuditEvent{ID: fmt.Sprint("turn-", n), Type: warden.EventToolExecuted,
				Tenant: "acme", WorkflowID: "wf-two", Step: n, OccurredAt: old}))
		}
		turns, err := first.Query(ctx, warden.AuditFilter{WorkflowID: "wf-two"})
		require.NoError(t, err)
		require.Len(t, turns, 5)
		for i := 1; i < len(turns); i++ {
			require.Equal(t, turns[i-1].Hash, turns[i].PrevHash, "turn %d", i)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for w, s := range []Store{first, second} {
			wg.Go(func() {
				for n := range 20 {
					errs <- s.Append(ctx, warden.AuditEvent{ID: fmt.Sprintf("two-%d-%d", w, n), Type: warden.EventToolExecuted,
						Tenant: "acme", WorkflowID: "wf-two", Step: n, OccurredAt: old})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		report, err := Verify(ctx, first, VerifyOptions{})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.EqualValues(t, 45, report.Events)

		_, err = second.Retain(ctx, RetainOptions{Tenant: "acme", Before: old.Add(time.Hour)})
		require.NoError(t, err)
		for _, s := range []Store{first, second} {
			require.NoError(t, s.Append(ctx, warden.AuditEvent{ID: fmt.Sprintf("again-%p", s), Type: warden.EventRunStarted,
				Tenant: "acme", WorkflowID: "wf-two"}))
		}
		got, err := first.Query(ctx, warden.AuditFilter{WorkflowID: "wf-two"})
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Empty(t, got[0].PrevHash, "a dropped run's workflow ID starts a new chain")
		require.Equal(t, got[0].Hash, got[1].PrevHash)
		report, err = Verify(ctx, first, VerifyOptions{})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
	})

	t.Run("Retention", func(t *testing.T) { runRetention(t, b) })
	t.Run("RetentionTamper", func(t *testing.T) { runRetentionTamper(t, b) })

	t.Run("ClosedStoreFails", func(t *testing.T) {
		t.Parallel()
		loc := b.newDB(t)
		s, err := b.open(t.Context(), loc)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.Error(t, s.Append(t.Context(), sampleEvents(1)...))
		_, err = s.Query(t.Context(), warden.AuditFilter{})
		require.Error(t, err)
		_, err = s.Has(t.Context(), "evt-0")
		require.Error(t, err)
	})
}

// migrationsDir names the backend's migrations, told apart by TRUNCATE.
func (b backend) migrationsDir() string {
	if b.truncate {
		return "migrations/postgres"
	}
	return "migrations/sqlite"
}

// fullEvent sets every field of an event.
func fullEvent(id string) warden.AuditEvent {
	return warden.AuditEvent{
		ID:             id,
		Seq:            12345, // ignored: the store assigns Seq
		Type:           warden.EventToolExecuted,
		Tenant:         "acme",
		WorkflowID:     "wf-1",
		RunID:          "run-1",
		Step:           7,
		CallID:         "call-42",
		Actor:          "alice@example.com",
		Tool:           "shell",
		Args:           json.RawMessage(`{"cmd":"ls","argv":["-l","/tmp"],"env":{"B":"2","A":"1"}}`),
		Result:         json.RawMessage(`{"exit_code":0,"stdout":"total 0\n","truncated":false}`),
		Decision:       warden.VerdictRequireApproval,
		Risk:           warden.RiskHigh,
		Reasons:        []string{"shell can write files", "approver required for high risk"},
		PolicyRevision: "rev-abc123",
		RequestID:      "apr_0123456789abcdef01234567",
		Model:          "gpt-4.1-mini",
		InputTokens:    1234,
		OutputTokens:   567,
		Message:        "ran ls; line two\nwith 'quotes' and \"double\"",
		// Nanoseconds and a non-UTC zone: read back as UTC microseconds.
		OccurredAt: time.Date(2026, 2, 3, 4, 5, 6, 123456789, time.FixedZone("CET", 3600)),
	}
}

// sampleEvents returns n distinct minimal events evt-0..evt-(n-1).
func sampleEvents(n int) []warden.AuditEvent {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]warden.AuditEvent, n)
	for i := range out {
		out[i] = warden.AuditEvent{
			ID: "evt-" + strconv.Itoa(i), Type: warden.EventToolRequested, Tenant: "acme",
			WorkflowID: "wf-sample", RunID: "run-1", Step: i, Message: "sample",
			OccurredAt: base.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

// canonical re-encodes an event's JSON fields so stores that normalize JSON
// (Postgres jsonb) compare equal to the bytes that were written.
func canonical(t testing.TB, e warden.AuditEvent) warden.AuditEvent {
	t.Helper()
	norm := func(raw json.RawMessage) json.RawMessage {
		if raw == nil {
			return nil
		}
		var v any
		require.NoError(t, json.Unmarshal(raw, &v))
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return b
	}
	e.Args, e.Result = norm(e.Args), norm(e.Result)
	return e
}
