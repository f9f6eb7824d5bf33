package workflows_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/worker"
)

// signedPolicy copies the default bundle into a directory and adds
// approver keys for alice and bob, returning the directory and the keys.
func signedPolicy(t *testing.T) (string, map[string]ed25519.PrivateKey) {
	t.Helper()
	keys := map[string]ed25519.PrivateKey{}
	pubs := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		keys[name] = priv
		pubs[name] = base64.StdEncoding.EncodeToString(pub)
	}
	b, _ := json.Marshal(pubs)
	return teststack.PolicyDir(t, map[string]string{"warden/approver_keys/data.json": string(b)}), keys
}

func sign(t *testing.T, key ed25519.PrivateKey, p warden.ApprovalRequest, d warden.ApprovalDecision) warden.ApprovalDecision {
	t.Helper()
	d, err := warden.SignApproval(key, p, d)
	require.NoError(t, err)
	return d
}

// TestQuorumOfSignedApprovals: a critical refund needs two distinct,
// signed approvals; unsigned, wrongly signed and repeated approvals are
// refused, and the call runs once the second valid one arrives.
func TestQuorumOfSignedApprovals(t *testing.T) {
	t.Parallel()
	policyDir, keys := signedPolicy(t)
	h := newHarnessWith(t, worker.Config{PolicyDir: policyDir})
	var first, again, unsigned, wrongKey, second *outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		require.Equal(t, warden.RiskCritical, p.Risk)
		require.Equal(t, 2, p.Quorum)
		require.True(t, p.Approvers.RequireSignature)
		first = h.update(sign(t, keys["alice"], p, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice"}))
		again = h.update(sign(t, keys["alice"], p, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice"}))
		unsigned = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "bob"})
		wrongKey = h.update(sign(t, keys["alice"], p, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "bob"}))
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		require.Len(t, p.Approvals, 1, "one approval so far")
		second = h.update(sign(t, keys["bob"], p, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "bob"}))
	}, 2*time.Minute)
	res, err := h.run(request("big_refund"))
	require.NoError(t, err)
	// alice's two concurrent approvals: exactly one counts, whichever the
	// workflow applied first; the other is refused.
	if first.err != nil {
		first, again = again, first
	}
	require.NoError(t, first.err)
	require.Equal(t, warden.ApprovalStatusPending, first.receipt.Status)
	require.Equal(t, 1, first.receipt.Approvals)
	require.ErrorContains(t, again.err, "already decided")
	require.ErrorContains(t, unsigned.err, "needs a signed approval")
	require.ErrorContains(t, wrongKey.err, "does not verify")
	require.NoError(t, second.err)
	require.Equal(t, warden.ApprovalStatusApproved, second.receipt.Status)
	require.Equal(t, 1, res.ToolCalls["executed"])
	ledger := h.ledger()
	require.Len(t, ledger, 1)
	require.EqualValues(t, 600000, ledger[0].AmountCents)
	var decided []string
	for _, e := range h.events() {
		if e.Type == warden.EventApprovalDecided {
			decided = append(decided, e.Actor)
			require.Contains(t, e.Message, "(signed)")
		}
	}
	require.Equal(t, []string{"alice", "bob"}, decided)
}

// TestEditBeforeApprove: the approver lowers the amount; the policy decides
// on the edited args, the edited call runs, the model hears what ran and
// the audit keeps both versions.
func TestEditBeforeApprove(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var edit *outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		edit = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice", Reason: "partial refund",
			Args: json.RawMessage(`{"order_id":"A-1","amount_cents":999,"currency":"EUR","reason":"damaged, partial"}`)})
	}, time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.NoError(t, edit.err)
	require.Equal(t, warden.ApprovalStatusApproved, edit.receipt.Status)
	require.Equal(t, 1, res.ToolCalls["executed"])
	require.Contains(t, res.Answer, "note: alice edited the arguments")
	require.Contains(t, res.Answer, "refund of 9.99 EUR issued")
	ledger := h.ledger()
	require.Len(t, ledger, 1)
	require.EqualValues(t, 999, ledger[0].AmountCents)

	evs := h.events()
	var requested []warden.AuditEvent
	for _, e := range evs {
		if e.Type == warden.EventToolRequested {
			requested = append(requested, e)
		}
	}
	require.Len(t, requested, 2, "the model's request and the approver's edit")
	require.Equal(t, "model", requested[0].Actor)
	require.Contains(t, string(requested[0].Args), "1999")
	require.Equal(t, "alice", requested[1].Actor)
	require.Contains(t, string(requested[1].Args), "999")
	require.Contains(t, string(find(t, evs, warden.EventApprovalDecided).Args), `"amount_cents":999`)
	require.Contains(t, string(find(t, evs, warden.EventToolExecuted).Args), `"amount_cents":999`)
}

// TestEditThatThePolicyRefusesOrTightens: an edit the policy denies is
// refused and leaves the request as it was; an edit that makes the call
// critical rebinds the request (new ID, quorum 2, signatures) and the
// editor's unsigned approval does not count.
func TestEditThatThePolicyRefusesOrTightens(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var denied, tightened *outcome
	var original string
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		original = p.RequestID
		denied = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice",
			Args: json.RawMessage(`{"order_id":"A-1","amount_cents":-5,"currency":"EUR","reason":"x"}`)})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		require.Equal(t, original, p.RequestID, "a refused edit changes nothing")
		tightened = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "bob",
			Args: json.RawMessage(`{"order_id":"A-1","amount_cents":900000,"currency":"EUR","reason":"x"}`)})
	}, 2*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		ps := h.pending()
		require.Len(t, ps, 1)
		require.NotEqual(t, original, ps[0].RequestID, "the request is rebound to the edited args")
		require.Equal(t, warden.RiskCritical, ps[0].Risk)
		require.Equal(t, 2, ps[0].Quorum)
		require.Empty(t, ps[0].Approvals, "an unsigned approval cannot count toward a signed quorum")
	}, 3*time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.ErrorContains(t, denied.err, "the policy refuses the edited args")
	require.NoError(t, tightened.err)
	require.Equal(t, warden.ApprovalStatusPending, tightened.receipt.Status)
	require.Equal(t, 1, res.ToolCalls["expired"], "nobody signed: the request expired")
	require.Empty(t, h.ledger())
}

// TestEscalationPostsToTheWebhook: the refund policy escalates after four
// hours; the webhook gets the request and the audit records it; the
// approval afterwards still works.
func TestEscalationPostsToTheWebhook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []worker.Escalation
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var e worker.Escalation
		_ = json.Unmarshal(b, &e)
		mu.Lock()
		bodies = append(bodies, e)
		mu.Unlock()
	}))
	defer hook.Close()
	h := newHarnessWith(t, worker.Config{EscalationWebhook: hook.URL})
	var approved *outcome
	h.env.RegisterDelayedCallback(func() {
		mu.Lock()
		require.Len(t, bodies, 1, "escalated after 4h")
		mu.Unlock()
		p := h.pending()[0]
		approved = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "carol"})
	}, 5*time.Hour)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.NoError(t, approved.err)
	require.Equal(t, 1, res.ToolCalls["executed"])
	require.Equal(t, "approval_escalated", bodies[0].Event)
	require.Equal(t, "acme", bodies[0].Tenant)
	require.Equal(t, "issue_refund", bodies[0].Request.Tool)
	esc := find(t, h.events(), warden.EventApprovalEscalated)
	require.Equal(t, bodies[0].Request.RequestID, esc.RequestID)
}

// TestTwoPendingCallsApprovedOutOfOrder: each approval reaches its own
// call, whatever the order, and an approval cannot be replayed.
func TestTwoPendingCallsApprovedOutOfOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var second, first, replay *outcome
	h.env.RegisterDelayedCallback(func() {
		ps := h.pending()
		require.Len(t, ps, 2)
		require.NotEqual(t, ps[0].RequestID, ps[1].RequestID)
		second = h.update(warden.ApprovalDecision{RequestID: ps[1].RequestID, Decision: "approve", Approver: "alice"})
		replay = h.update(warden.ApprovalDecision{RequestID: ps[1].RequestID, Decision: "approve", Approver: "alice"})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		ps := h.pending()
		require.Len(t, ps, 1)
		require.Contains(t, string(ps[0].Args), "R-1")
		first = h.update(warden.ApprovalDecision{RequestID: ps[0].RequestID, Decision: "reject", Approver: "bob", Reason: "duplicate"})
	}, 2*time.Minute)
	res, err := h.run(request("two_refunds"))
	require.NoError(t, err)
	if second.err != nil { // the two concurrent copies: either may be applied first
		second, replay = replay, second
	}
	require.NoError(t, second.err)
	require.NoError(t, first.err)
	require.ErrorContains(t, replay.err, "already")
	require.Equal(t, map[string]int{"executed": 1, "rejected": 1}, res.ToolCalls)
	ledger := h.ledger()
	require.Len(t, ledger, 1)
	require.Equal(t, "R-2", ledger[0].OrderID, "the approval of the second call ran the second call")
	require.Contains(t, res.Answer, "rejected by bob: duplicate")
}

// strictPolicy writes a small user policy: every call needs alice or bob,
// hides the "reason" argument, and a rejection ends the run.
func strictPolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "strict.rego"), []byte(`package warden.authz

decision := {
	"allow": true,
	"require_approval": true,
	"reasons": ["strict test policy: every call needs approval"],
	"risk": "high",
	"approvers": {"users": ["alice", "bob"]},
	"quorum": 1,
	"obligations": {"timeout_seconds": 30, "max_output_bytes": 65536, "redact_args": ["reason"], "stop_on_reject": true},
}
`), 0o644))
	return dir
}

// TestRedactedArgsAndStopOnReject: arguments the policy hides never show
// in the pending request or the transcript, and a rejection ends the run
// when the policy says so.
func TestRedactedArgsAndStopOnReject(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, worker.Config{PolicyDir: strictPolicy(t)})
	var rejected *outcome
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		require.JSONEq(t, `{"order_id":"A-1","amount_cents":1999,"currency":"EUR","reason":"[redacted]"}`, string(p.Args))
		v, err := h.env.QueryWorkflow(warden.QueryTranscript)
		require.NoError(t, err)
		var msgs []warden.Message
		require.NoError(t, v.Get(&msgs))
		require.Equal(t, warden.RoleSystem, msgs[0].Role)
		require.Equal(t, "test goal", msgs[1].Content)
		require.Len(t, msgs[2].ToolCalls, 1)
		require.Contains(t, string(msgs[2].ToolCalls[0].Args), `"reason":"[redacted]"`)
		require.NotContains(t, string(msgs[2].ToolCalls[0].Args), "damaged")
		rejected = h.update(warden.ApprovalDecision{RequestID: p.RequestID, Decision: "reject", Approver: "bob", Reason: "no"})
	}, time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.NoError(t, rejected.err)
	require.Equal(t, warden.StatusFailed, res.Status)
	require.Contains(t, res.Error, "bob rejected issue_refund and the policy ends the run")
	require.Equal(t, 1, res.Steps, "the model was not called again")
}
