package workflows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// Attacks that try approvals with nothing on the record, or make trying
// them expensive for the run (issue 13, class 3). A refused Update leaves
// no history; before the refusal recorder it left no audit row either. A
// Signal that did not decode was dropped unaudited, and one of any size
// was applied.

// refusedVia returns the approval_refused rows of refusals that arrived by
// via ("update" or "signal"), summaries included.
func refusedVia(evs []warden.AuditEvent, via string) []warden.AuditEvent {
	var out []warden.AuditEvent
	for _, e := range refusals(evs) {
		if strings.HasPrefix(e.Message, via+" refused:") || strings.Contains(e.Message, "the last: "+via+" refused:") {
			out = append(out, e)
		}
	}
	return out
}

// TestEveryRefusedUpdateIsOnTheRecord: an approve Update the validator
// refuses (for who sent it, what it names, how it is encoded or how large
// it is) gets an approval_refused row naming its update ID; the run is
// approvable afterwards and nothing refused is applied.
func TestEveryRefusedUpdateIsOnTheRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	type attempt struct {
		id, want string
		payload  func(p warden.ApprovalRequest) any
	}
	attempts := []attempt{
		{"self", "may not approve", func(p warden.ApprovalRequest) any {
			return warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "dana"}
		}},
		{"stranger", "not among the approvers", func(p warden.ApprovalRequest) any {
			return warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "mallory"}
		}},
		{"unknown-request", "no pending approval request", func(warden.ApprovalRequest) any {
			return warden.ApprovalDecision{RequestID: "apr_guess", Decision: "approve", Approver: "alice"}
		}},
		{"not-a-decision", "not an approval decision", func(warden.ApprovalRequest) any { return "approve it please" }},
		{"not-json", "send JSON", func(warden.ApprovalRequest) any { return []byte(`{"decision":"approve"}`) }},
		{"oversize", "may be at most 16384", func(p warden.ApprovalRequest) any {
			return warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice", Reason: strings.Repeat("x", 20<<10)}
		}},
	}
	outcomes := make([]*outcome, len(attempts))
	var approved *outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		for i, a := range attempts {
			outcomes[i] = h.updateRaw("attack-"+a.id, a.payload(p))
		}
		approved = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice", Reason: "checked"})
	}, time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.Equal(t, 1, res.ToolCalls["executed"])
	require.NoError(t, approved.err)
	evs := h.events()
	rows := refusedVia(evs, "update")
	require.Len(t, rows, len(attempts), "one row per refused Update")
	for i, a := range attempts {
		require.ErrorContains(t, outcomes[i].err, a.want, a.id)
		var row *warden.AuditEvent
		for j := range rows {
			if strings.Contains(rows[j].Message, "update ID attack-"+a.id+";") {
				row = &rows[j]
			}
		}
		require.NotNil(t, row, "no row for the refused Update %s", a.id)
		require.Contains(t, row.Message, a.want)
		require.LessOrEqual(t, len(row.Message), 2<<10+8, "a refusal row is bounded")
	}
	require.Equal(t, []string{"alice approve"}, decisions(evs))
}

// TestUndecodableOrOversizeSignalsAreRefusedAndAudited: a Signal that is
// not an approval decision, not JSON, or larger than the limit is refused
// and audited, never applied, even when it names a permitted approver.
func TestUndecodableOrOversizeSignalsAreRefusedAndAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var approved *outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		h.env.SignalWorkflow(warden.SignalApprove, "approve it please")
		h.env.SignalWorkflow(warden.SignalApprove, []byte(`{"decision":"approve"}`))
		h.env.SignalWorkflow(warden.SignalApprove, warden.ApprovalDecision{
			RequestID: p.RequestID, Decision: "approve", Approver: "alice", Reason: strings.Repeat("y", 20<<10),
		})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()
		require.Len(t, p, 1, "no refused Signal was applied")
		require.Empty(t, p[0].Approvals)
		approved = h.update(warden.ApprovalDecision{RequestID: p[0].RequestID, Decision: "approve", Approver: "alice"})
	}, 2*time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.NoError(t, approved.err)
	require.Equal(t, 1, res.ToolCalls["executed"])
	evs := h.events()
	rows := refusedVia(evs, "signal")
	require.Len(t, rows, 3)
	for i, want := range []string{"not an approval decision", "send JSON", "may be at most 16384"} {
		require.Contains(t, rows[i].Message, want)
	}
	require.Equal(t, "alice", rows[2].Actor, "the oversize Signal's fields are on the record")
	require.Equal(t, []string{"alice approve"}, decisions(evs))
}

// TestARefusalFloodIsAuditedInSummary: a flood of refused Signals and
// Updates costs a bounded number of audit rows (the first 20 of each in
// full, then one summary per 50), every refusal is counted, and the run
// is approvable afterwards.
func TestARefusalFloodIsAuditedInSummary(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const flood = 130
	var approved *outcome
	var updates []*outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		for range flood {
			h.env.SignalWorkflow(warden.SignalApprove, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "mallory"})
			updates = append(updates, h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "mallory"}))
		}
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		approved = h.update(warden.ApprovalDecision{RequestID: h.pending()[0].RequestID, Decision: "approve", Approver: "alice"})
	}, 2*time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.NoError(t, approved.err)
	require.Equal(t, 1, res.ToolCalls["executed"])
	for _, u := range updates {
		require.ErrorContains(t, u.err, "not among the approvers")
	}
	evs := h.events()
	const rowsEach = 20 + (flood-20)/50
	for _, via := range []string{"signal", "update"} {
		rows := refusedVia(evs, via)
		require.Len(t, rows, rowsEach, via)
		summaries := 0
		for _, r := range rows {
			if strings.Contains(r.Message, "summarised in this row") {
				summaries++
			}
		}
		require.Equal(t, (flood-20)/50, summaries, via)
		require.Contains(t, rows[len(rows)-1].Message, "120 approval attempts refused in all", via)
	}
	require.Equal(t, []string{"alice approve"}, decisions(evs))
}
