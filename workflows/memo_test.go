package workflows_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/worker"
)

// memoRecorder collects every value the workflow upserts under
// warden.MemoPending, in order (nil for a removed key).
type memoRecorder struct {
	mu     sync.Mutex
	values []any
}

func recordMemo(h *harness) *memoRecorder {
	rec := &memoRecorder{}
	h.env.OnUpsertMemo(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		m := args.Get(0).(map[string]any)
		v, ok := m[warden.MemoPending]
		if !ok {
			return
		}
		rec.mu.Lock()
		rec.values = append(rec.values, v)
		rec.mu.Unlock()
	})
	return rec
}

// decoded is the i-th upserted value as JSON and as the memo type.
func (rec *memoRecorder) decoded(t *testing.T, i int) (string, []warden.PendingApproval) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Greater(t, len(rec.values), i, "memo upserts: %v", rec.values)
	if rec.values[i] == nil {
		return "", nil
	}
	b, err := json.Marshal(rec.values[i])
	require.NoError(t, err)
	var ps []warden.PendingApproval
	require.NoError(t, json.Unmarshal(b, &ps))
	return string(b), ps
}

// TestPendingMemoHasNoArgsNorReasonsAndIsCleared: while a refund waits,
// the memo holds its request (ID, tool, hash, risk, approvers, quorum,
// expiry) and neither the arguments nor the policy's reasons; each
// approval of a quorum updates it; after the decision the key is removed,
// and nothing is written when nothing changed.
func TestPendingMemoHasNoArgsNorReasonsAndIsCleared(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rec := recordMemo(h)
	var live warden.ApprovalRequest
	var approved *outcome
	h.env.RegisterDelayedCallback(func() {
		ps := h.pending()
		require.Len(t, ps, 1)
		live = ps[0]
		approved = h.update(warden.ApprovalDecision{RequestID: live.RequestID, Decision: "approve", Approver: "alice", Reason: "verified order A-1"})
	}, time.Minute)
	res, err := h.run(request("refund"))
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.NoError(t, approved.err)

	require.Len(t, rec.values, 2, "one upsert when the request opened, one removal after the decision: %v", rec.values)
	raw, ps := rec.decoded(t, 0)
	require.Len(t, ps, 1)
	p := ps[0]
	require.Equal(t, live.RequestID, p.RequestID)
	require.Equal(t, "issue_refund", p.Tool)
	require.Equal(t, live.CallID, p.CallID)
	require.Equal(t, live.Step, p.Step)
	require.Equal(t, live.ArgsHash, p.ArgsHash)
	require.NotEmpty(t, p.ArgsHash)
	require.Equal(t, warden.RiskHigh, p.Risk)
	require.Contains(t, p.Approvers.Users, "alice")
	require.Equal(t, live.Quorum, p.Quorum)
	require.Equal(t, "dana", p.Requester)
	require.Equal(t, live.PolicyRevision, p.PolicyRevision)
	require.True(t, live.ExpiresAt.Equal(p.ExpiresAt))
	require.True(t, live.RequestedAt.Equal(p.RequestedAt))
	require.Empty(t, p.Approvals)

	var keys []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(raw), &keys))
	require.NotContains(t, keys[0], "args")
	require.NotContains(t, keys[0], "reasons")
	require.NotEmpty(t, live.Reasons, "the live query has the policy's reasons")
	for _, reason := range live.Reasons {
		require.NotContains(t, raw, reason, "a policy reason in the memo")
	}
	for _, secret := range []string{"A-1", "damaged", "1999", "EUR"} {
		require.Contains(t, string(live.Args), secret, "the live query has the arguments")
		require.NotContains(t, raw, secret, "an argument value in the memo")
	}
	rec.mu.Lock()
	require.Nil(t, rec.values[1], "the key is removed once nothing is pending")
	rec.mu.Unlock()
}

// TestPendingMemoFollowsAQuorumAndAnExpiry: each approval of a quorum is
// in the memo (approver and decision only, no reason); an expired request
// leaves it.
func TestPendingMemoFollowsAQuorumAndAnExpiry(t *testing.T) {
	t.Parallel()
	policyDir, keys := signedPolicy(t)
	h := newHarnessWith(t, worker.Config{PolicyDir: policyDir})
	rec := recordMemo(h)
	h.env.RegisterDelayedCallback(func() {
		p := h.pending()[0]
		h.update(sign(t, keys["alice"], p, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice", Reason: "secret-reason-xyz"}))
	}, time.Minute)
	req := request("big_refund")
	req.ApprovalTimeout = time.Hour
	res, err := h.run(req)
	require.NoError(t, err)
	require.Equal(t, 1, res.ToolCalls["expired"], "bob never approved")

	require.Len(t, rec.values, 3, "opened, one approval, expired: %v", rec.values)
	_, first := rec.decoded(t, 0)
	require.Len(t, first, 1)
	require.Equal(t, 2, first[0].Quorum)
	require.True(t, first[0].Approvers.RequireSignature)
	require.Empty(t, first[0].Approvers.Keys, "no public keys in the memo")
	raw, second := rec.decoded(t, 1)
	require.Equal(t, []warden.ApprovalVote{{Approver: "alice", Decision: "approve"}}, second[0].Approvals)
	require.False(t, strings.Contains(raw, "secret-reason-xyz"), "an approver's reason in the memo: %s", raw)
	require.NotContains(t, raw, `"signature":`, "no approval signature in the memo")
	rec.mu.Lock()
	require.Nil(t, rec.values[2], "the expired request left the memo")
	rec.mu.Unlock()
}
