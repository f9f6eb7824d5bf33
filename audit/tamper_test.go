package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// tamperFixture appends two sealed runs of tenant acme (wf-a: a-0..a-4,
// wf-b: b-0..b-2), one run of globex, and then two unsealed events of wf-a
// (a-5, a-6).
func tamperFixture(t *testing.T, s Store) {
	t.Helper()
	ctx := t.Context()
	base := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	ev := func(tenant, wf, id string, i int) warden.AuditEvent {
		return warden.AuditEvent{
			ID: id, Type: warden.EventToolExecuted, Tenant: tenant, WorkflowID: wf, RunID: "r1", Step: i,
			Actor: "sandbox", Tool: "issue_refund", Args: json.RawMessage(fmt.Sprintf(`{"amount": %d.50, "currency":"USD"}`, 100+i)),
			Result: json.RawMessage(`{"ok":true}`), Message: "refund issued", OccurredAt: base.Add(time.Duration(i) * time.Second),
		}
	}
	for i := range 5 {
		require.NoError(t, s.Append(ctx, ev("acme", "wf-a", fmt.Sprint("a-", i), i)))
		if i < 3 {
			require.NoError(t, s.Append(ctx, ev("acme", "wf-b", fmt.Sprint("b-", i), i)))
		}
	}
	require.NoError(t, s.Append(ctx, ev("globex", "wf-g", "g-0", 0)))
	_, err := s.Seal(ctx, "")
	require.NoError(t, err)
	require.NoError(t, s.Append(ctx, ev("acme", "wf-a", "a-5", 5), ev("acme", "wf-a", "a-6", 6)))
	report, err := Verify(ctx, s, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.EqualValues(t, 2, report.Unsealed)
}

// runTamper is the tamper suite: as the database superuser, change the log
// in each way an insider might; Verify, and the offline verification of an
// export taken afterwards, must report it and name the spot.
func runTamper(t *testing.T, b backend) {
	// forgedInsert builds an INSERT of a row that claims to follow prev in
	// wf-a with a correctly computed hash: a forger who knows the format.
	forged := func(t *testing.T, s Store, prevID string, occurred string) string {
		got, err := s.Query(t.Context(), warden.AuditFilter{WorkflowID: "wf-a"})
		require.NoError(t, err)
		var prev warden.AuditEvent
		for _, e := range got {
			if e.ID == prevID {
				prev = e
			}
		}
		at, err := time.Parse(time.RFC3339Nano, occurred)
		require.NoError(t, err)
		f := warden.AuditEvent{ID: "forged", Type: warden.EventApprovalDecided, Tenant: "acme", WorkflowID: "wf-a",
			Actor: "mallory", Decision: "approve", OccurredAt: at, PrevHash: prev.Hash}
		h, err := EventHash(f)
		require.NoError(t, err)
		return fmt.Sprintf("INSERT INTO audit_events (event_id, event_type, tenant, workflow_id, actor, decision, occurred_at, prev_hash, hash) "+
			"VALUES ('forged', 'approval_decided', 'acme', 'wf-a', 'mallory', 'approve', '%s', '%s', '%s')", occurred, prev.Hash, h)
	}
	for _, tc := range []struct {
		name string
		// sql tampers; with s the store (for forgeries).
		sql func(t *testing.T, s Store) string
		// opts restricts verification (zero: everything).
		opts VerifyOptions
		// the first break must name this event or seal and problem.
		eventID   string
		sealIndex int64
		problem   string
		// offline says whether the offline check of a full export names the
		// same first break.
		offline bool
	}{
		{name: "edit a field", sql: func(*testing.T, Store) string {
			return "UPDATE audit_events SET message = 'nothing to see' WHERE event_id = 'a-2'"
		}, eventID: "a-2", problem: "content does not match its hash", offline: true},
		{name: "edit the arguments", sql: func(*testing.T, Store) string {
			return `UPDATE audit_events SET args = '{"amount": 1, "currency": "USD"}' WHERE event_id = 'b-1'`
		}, eventID: "b-1", problem: "content does not match its hash", offline: true},
		{name: "edit the approver", sql: func(*testing.T, Store) string {
			return "UPDATE audit_events SET actor = 'alice' WHERE event_id = 'a-6'"
		}, eventID: "a-6", problem: "content does not match its hash", offline: true},
		{name: "delete a row", sql: func(*testing.T, Store) string {
			return "DELETE FROM audit_events WHERE event_id = 'a-3'"
		}, eventID: "a-4", problem: "does not match the previous event of the chain (seq", offline: true},
		{name: "delete the first row of a run", sql: func(*testing.T, Store) string {
			return "DELETE FROM audit_events WHERE event_id = 'b-0'"
		}, eventID: "b-1", problem: "the events before it were deleted", offline: true},
		{name: "delete a whole run", sql: func(*testing.T, Store) string {
			return "DELETE FROM audit_events WHERE workflow_id = 'wf-b'"
		}, sealIndex: 1, problem: "head of workflow wf-b", offline: true},
		{name: "delete the tail of a sealed run", sql: func(*testing.T, Store) string {
			return "DELETE FROM audit_events WHERE event_id = 'b-2'"
		}, sealIndex: 1, problem: "head of workflow wf-b", offline: true},
		{name: "delete a whole run, checked by workflow", sql: func(*testing.T, Store) string {
			return "DELETE FROM audit_events WHERE workflow_id = 'wf-b'"
		}, opts: VerifyOptions{WorkflowID: "wf-b"}, sealIndex: 1, problem: "head of workflow wf-b"},
		{name: "reorder timestamps", sql: func(*testing.T, Store) string {
			return "UPDATE audit_events SET occurred_at = (SELECT occurred_at FROM audit_events WHERE event_id = 'a-1') WHERE event_id = 'a-3'"
		}, eventID: "a-3", problem: "content does not match its hash", offline: true},
		{name: "reorder rows", sql: func(*testing.T, Store) string {
			// Swap a-1 (seq 3) and a-2 (seq 5): the fixture appends one
			// event per transaction, so seqs are 1, 2, 3...
			return "UPDATE audit_events SET seq = -3 WHERE event_id = 'a-1' AND seq = 3; " +
				"UPDATE audit_events SET seq = 3 WHERE event_id = 'a-2' AND seq = 5; " +
				"UPDATE audit_events SET seq = 5 WHERE event_id = 'a-1' AND seq = -3"
		}, eventID: "a-2", problem: "content does not match its hash", offline: true},
		{name: "edit recorded_at", sql: func(*testing.T, Store) string {
			return "UPDATE audit_events SET recorded_at = '2020-01-01T00:00:00.000000Z' WHERE event_id = 'a-2'"
		}, eventID: "a-2", problem: "content does not match its hash", offline: true},
		{name: "swap seq across two runs, no seal head involved", sql: func(*testing.T, Store) string {
			// a-1 (seq 3) and b-1 (seq 4): each chain's own order stays
			// increasing, so only hashing seq (version 2) catches it.
			return "UPDATE audit_events SET seq = -3 WHERE event_id = 'a-1' AND seq = 3; " +
				"UPDATE audit_events SET seq = 3 WHERE event_id = 'b-1' AND seq = 4; " +
				"UPDATE audit_events SET seq = 4 WHERE event_id = 'a-1' AND seq = -3"
		}, eventID: "b-1", problem: "content does not match its hash", offline: true},
		{name: "downgrade a row's hash version", sql: func(*testing.T, Store) string {
			// Claiming version 1 drops seq and recorded_at from the hash.
			return "UPDATE audit_events SET hash_version = 1 WHERE event_id = 'a-2'"
		}, eventID: "a-2", problem: "content does not match its hash", offline: true},
		{name: "insert a forged row with a made-up hash", sql: func(*testing.T, Store) string {
			return "INSERT INTO audit_events (event_id, event_type, tenant, workflow_id, actor, decision, occurred_at, prev_hash, hash) " +
				"VALUES ('forged', 'approval_decided', 'acme', 'wf-a', 'mallory', 'approve', '2026-05-04T10:00:03.000000Z', 'x', 'deadbeef')"
		}, eventID: "forged", problem: "content does not match its hash", offline: true},
		{name: "insert a forged row into a sealed range", sql: func(t *testing.T, s Store) string {
			// A correct hash, linked after a-2: the fork is caught.
			return forged(t, s, "a-2", "2026-05-04T10:00:02.500000Z")
		}, eventID: "forged", problem: "does not match the previous event of the chain", offline: true},
		{name: "edit a seal", sql: func(*testing.T, Store) string {
			return "UPDATE audit_seals SET event_count = 7 WHERE tenant = 'acme'"
		}, sealIndex: 1, problem: "the seal was changed", offline: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, loc := b.fresh(t)
			tamperFixture(t, s)
			b.superuser(t, loc, tc.sql(t, s))

			report, err := Verify(t.Context(), s, tc.opts)
			require.NoError(t, err)
			require.False(t, report.OK(), "tampering went unnoticed")
			first := report.Breaks[0]
			t.Log(first)
			if tc.eventID != "" {
				require.Equal(t, tc.eventID, first.EventID, "%v", report.Breaks)
				require.Positive(t, first.Seq)
			}
			if tc.sealIndex != 0 {
				require.Equal(t, tc.sealIndex, first.SealIndex, "%v", report.Breaks)
			}
			require.Contains(t, first.Problem, tc.problem, "%v", report.Breaks)

			if tc.offline {
				var buf bytes.Buffer
				_, err := Export(t.Context(), s, &buf, ExportOptions{})
				require.NoError(t, err)
				offline, err := VerifyFile(&buf)
				require.NoError(t, err)
				require.False(t, offline.OK())
				require.Equal(t, first, offline.Breaks[0])
			}
		})
	}

	t.Run("untouched export verifies offline, and an edited one does not", func(t *testing.T) {
		t.Parallel()
		s, _ := b.fresh(t)
		tamperFixture(t, s)
		var buf bytes.Buffer
		n, err := Export(t.Context(), s, &buf, ExportOptions{Tenant: "acme"})
		require.NoError(t, err)
		require.EqualValues(t, 10, n)
		report, err := VerifyFile(bytes.NewReader(buf.Bytes()))
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.EqualValues(t, 10, report.Events)

		edited := bytes.Replace(buf.Bytes(), []byte(`"amount":102.5`), []byte(`"amount":1002.5`), 1)
		require.NotEqual(t, buf.Bytes(), edited)
		report, err = VerifyFile(bytes.NewReader(edited))
		require.NoError(t, err)
		require.False(t, report.OK())
		require.Equal(t, "a-2", report.Breaks[0].EventID)

		// A time-ranged export starts mid-chain: still verifiable.
		buf.Reset()
		_, err = Export(t.Context(), s, &buf, ExportOptions{Tenant: "acme", Since: time.Date(2026, 5, 4, 10, 0, 2, 0, time.UTC)})
		require.NoError(t, err)
		report, err = VerifyFile(&buf)
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.EqualValues(t, 6, report.Events)
	})
}

func TestPostgresTamper(t *testing.T) {
	t.Parallel()
	runTamper(t, postgresBackend)
}

func TestSQLiteTamper(t *testing.T) {
	t.Parallel()
	runTamper(t, sqliteBackend)
}

// runHashVersions pins compatibility: rows written with hash version 1
// (before seq and recorded_at were hashed) keep verifying, online and
// offline, and the chain goes on from them in version 2.
func runHashVersions(t *testing.T, b backend) {
	s, loc := b.fresh(t)
	insertV1Row(t, b, loc, "wf-old")
	next := warden.AuditEvent{ID: "v2-1", Type: warden.EventRunFinished, Tenant: "acme", WorkflowID: "wf-old", Actor: "system",
		OccurredAt: time.Date(2026, 5, 4, 10, 0, 1, 0, time.UTC)}
	require.NoError(t, s.Append(t.Context(), next))
	got, err := s.Query(t.Context(), warden.AuditFilter{WorkflowID: "wf-old"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, 1, got[0].HashVersion, "the old row keeps its version")
	require.Equal(t, EventHashVersion, got[1].HashVersion)
	require.Equal(t, got[0].Hash, got[1].PrevHash, "the new row links to the old one")

	report, err := Verify(t.Context(), s, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.EqualValues(t, 2, report.Events)
	var buf bytes.Buffer
	_, err = Export(t.Context(), s, &buf, ExportOptions{})
	require.NoError(t, err)
	offline, err := VerifyFile(&buf)
	require.NoError(t, err)
	require.True(t, offline.OK(), "%v", offline.Breaks)

	// An unknown version is named, not trusted.
	got[1].HashVersion = 3
	_, err = EventHash(got[1])
	require.ErrorContains(t, err, "unknown hash version 3")
}

// insertV1Row writes, as the superuser, run_started event v1-0 of
// acme/workflow (first of its chain) hashed with version 1, the way an
// older Warden wrote it (no seq or recorded_at of its choosing).
func insertV1Row(t *testing.T, b backend, loc, workflow string) {
	t.Helper()
	old := warden.AuditEvent{ID: "v1-0", Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: workflow, Actor: "dana",
		Message: "written by an older Warden", OccurredAt: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
	h, err := EventHash(old)
	require.NoError(t, err)
	b.superuser(t, loc, fmt.Sprintf("INSERT INTO audit_events (event_id, event_type, tenant, workflow_id, actor, message, occurred_at, hash) "+
		"VALUES ('v1-0', 'run_started', 'acme', '%s', 'dana', 'written by an older Warden', '2026-05-04T10:00:00.000000Z', '%s')", workflow, h))
}

func TestPostgresHashVersions(t *testing.T) {
	t.Parallel()
	runHashVersions(t, postgresBackend)
}

func TestSQLiteHashVersions(t *testing.T) {
	t.Parallel()
	runHashVersions(t, sqliteBackend)
}
