package workflows_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/worker"
)

// Attacks on the approval record by the rights an approver already has
// (issue 13, classes 4, 5 and 6). Each test failed on the workflow before
// the approval-record version.

// decisions lists the approval_decided rows as "actor decision".
func decisions(evs []warden.AuditEvent) []string {
	var out []string
	for _, e := range evs {
		if e.Type == warden.EventApprovalDecided {
			out = append(out, e.Actor+" "+e.Decision)
		}
	}
	return out
}

func refusals(evs []warden.AuditEvent) []warden.AuditEvent {
	var out []warden.AuditEvent
	for _, e := range evs {
		if e.Type == warden.EventApprovalRefused {
			out = append(out, e)
		}
	}
	return out
}

// TestRefusedEditIsNeverRecordedAsApproval (class 4): an edit the policy
// refuses writes approval_refused, not "approve"; the same approver's
// later reject is recorded and applied, not lost to de-duplication.
func TestRefusedEditIsNeverRecordedAsApproval(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var edit, reject *outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		edit = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice",
			Args: json.RawMessage(`{"order_id":"A-1","amount_cents":-500,"currency":"EUR","reason":"x"}`)})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		reject = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "reject", Approver: "alice", Reason: "changed my mind"})
	}, 2*time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.ErrorContains(t, edit.err, "the policy refuses the edited args")
	require.NoError(t, reject.err)
	require.Equal(t, warden.ApprovalStatusRejected, reject.receipt.Status)
	require.Equal(t, 1, res.ToolCalls["rejected"])
	require.Empty(t, h.ledger())
	evs := h.events()
	require.Equal(t, []string{"alice reject"}, decisions(evs), "the record says what was applied: one rejection")
	refused := refusals(evs)
	require.Len(t, refused, 1)
	require.Equal(t, "alice", refused[0].Actor)
	require.Equal(t, "issue_refund", refused[0].Tool)
	require.Contains(t, refused[0].Message, "update refused: ")
	require.Contains(t, refused[0].Message, "amount_cents")
}

// TestEditCannotLowerACriticalRefund (class 6): an approver edits a
// critical refund (two signed approvals) to an amount under the threshold
// (high: one unsigned). The edited call still needs two signed approvals;
// the editor's signed approval counts once, an unsigned second one is
// refused, and it runs only after a second signed approval.
func TestEditCannotLowerACriticalRefund(t *testing.T) {
	t.Parallel()
	policyDir, keys := signedPolicy(t)
	h := newHarnessWith(t, worker.Config{PolicyDir: policyDir})
	edited := json.RawMessage(`{"order_id":"B-7","amount_cents":400000,"currency":"EUR","reason":"partial"}`)
	var edit, unsigned, carol, second *outcome
	var original string
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		original = p.RequestID
		require.Equal(t, warden.RiskCritical, p.Risk)
		edit = h.update(sign(t, keys["alice"], p, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice", Args: edited}))
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		ps := h.pending()
		require.Len(t, ps, 1)
		p := ps[0]
		require.NotEqual(t, original, p.RequestID, "rebound to the edited args")
		require.Equal(t, warden.RiskCritical, p.Risk, "the higher risk")
		require.Equal(t, 2, p.Quorum, "the larger quorum")
		require.True(t, p.Approvers.RequireSignature, "signatures still required")
		require.Len(t, p.Approvals, 1, "the editor's signed approval counts")
		unsigned = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "bob"})
		carol = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "carol"})
	}, 2*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		second = h.update(sign(t, keys["bob"], p, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "bob"}))
	}, 3*time.Minute)
	res, err := h.run(request("big_refund"))
	require.NoError(t, err)
	require.NoError(t, edit.err)
	require.Equal(t, warden.ApprovalStatusPending, edit.receipt.Status, "one approver cannot approve the edited refund alone")
	require.ErrorContains(t, unsigned.err, "needs a signed approval")
	require.ErrorContains(t, carol.err, "no public key for carol")
	require.NoError(t, second.err)
	require.Equal(t, warden.ApprovalStatusApproved, second.receipt.Status)
	require.Equal(t, 1, res.ToolCalls["executed"])
	ledger := h.ledger()
	require.Len(t, ledger, 1)
	require.EqualValues(t, 400000, ledger[0].AmountCents)
	evs := h.events()
	require.Equal(t, []string{"alice approve", "bob approve"}, decisions(evs))
	e := find(t, evs, warden.EventApprovalDecided)
	require.Equal(t, warden.RiskCritical, e.Risk)
	require.Contains(t, e.Message, "needs 2 approval(s) at critical risk, signed")
	require.Contains(t, e.Message, "this approval counts toward it")
}

// bandPolicy: refunds under 100 cents run without approval; larger ones
// need two of alice, bob, carol.
func bandPolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "band.rego"), []byte(`package warden.authz

small if input.args.amount_cents < 100

decision := {"allow": true, "require_approval": false, "reasons": ["small refund"], "risk": "low"} if small

decision := {
	"allow": true, "require_approval": true, "reasons": ["refund: two approvals"], "risk": "high",
	"approvers": {"users": ["alice", "bob", "carol"]}, "quorum": 2,
} if not small
`), 0o644))
	return dir
}

// TestEditToAnAllowedCallKeepsTheBar (class 6): editing a call that needs
// two approvals into one the policy would allow outright does not approve
// it: it still needs the two.
func TestEditToAnAllowedCallKeepsTheBar(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, worker.Config{PolicyDir: bandPolicy(t)})
	var edit, second *outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		require.Equal(t, 2, p.Quorum)
		edit = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice",
			Args: json.RawMessage(`{"order_id":"A-1","amount_cents":50,"currency":"EUR","reason":"token"}`)})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		ps := h.pending()
		require.Len(t, ps, 1, "still pending after the edit")
		require.Equal(t, 2, ps[0].Quorum)
		require.Equal(t, warden.RiskHigh, ps[0].Risk)
		second = h.update(warden.ApprovalDecision{RequestID: ps[0].RequestID, Decision: "approve", Approver: "bob"})
	}, 2*time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.NoError(t, edit.err)
	require.Equal(t, warden.ApprovalStatusPending, edit.receipt.Status)
	require.Equal(t, 1, edit.receipt.Approvals)
	require.NoError(t, second.err)
	require.Equal(t, warden.ApprovalStatusApproved, second.receipt.Status)
	require.Equal(t, 1, res.ToolCalls["executed"])
	require.EqualValues(t, 50, h.ledger()[0].AmountCents)
}

// anyonePolicy: every call needs two approvals by anyone but the requester.
func anyonePolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "anyone.rego"), []byte(`package warden.authz

decision := {
	"allow": true, "require_approval": true, "reasons": ["anyone but the requester, twice"], "risk": "high",
	"approvers": {"users": ["*"]}, "quorum": 2,
}
`), 0o644))
	return dir
}

// TestLookAlikeNamesCannotApprove (class 5): under "*", the requester dana
// cannot approve as Dana, DANA, dana with a zero-width space or a bidi
// control, or with a Cyrillic "а", by Update or by Signal; one approver in
// two spellings is one approval. Every refused Update and Signal is audited.
func TestLookAlikeNamesCannotApprove(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, worker.Config{PolicyDir: anyonePolicy(t)})
	disguises := []string{"Dana", "DANA", "dana\u200b", "\u202edana", "d\u0430na", "\uff44\uff41\uff4e\uff41"}
	var updates []*outcome
	var erin, erinAgain, frank *outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		for _, name := range disguises {
			updates = append(updates, h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: name}))
			h.env.SignalWorkflow(warden.SignalApprove, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: name})
		}
		erin = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "Erin"})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		require.Len(t, p.Approvals, 1)
		erinAgain = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "erin"})
		h.env.SignalWorkflow(warden.SignalApprove, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "ERIN"})
	}, 2*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		require.Len(t, p.Approvals, 1, "erin in three spellings is one approval")
		frank = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "frank"})
	}, 3*time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	for i, o := range updates {
		require.ErrorContains(t, o.err, "approval refused", disguises[i])
	}
	require.NoError(t, erin.err)
	require.ErrorContains(t, erinAgain.err, "already decided")
	require.NoError(t, frank.err)
	require.Equal(t, warden.ApprovalStatusApproved, frank.receipt.Status)
	require.Equal(t, 1, res.ToolCalls["executed"])
	evs := h.events()
	require.Equal(t, []string{"Erin approve", "frank approve"}, decisions(evs))
	require.Len(t, refusals(evs), 2*len(disguises)+2, "every refused Update and Signal is on the record")
}
