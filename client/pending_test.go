package client_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/govern"
)

// TestPendingMemoRoundTrip: the memo form of a request drops the
// arguments, the policy's reasons, the approver keys and everything of an
// approval but who decided what, and reads back as a request that can be
// checked and signed (its args hash is kept).
func TestPendingMemoRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	req := warden.ApprovalRequest{
		RequestID: "apr_1", Step: 2, CallID: "c1", Tool: "issue_refund",
		Args: json.RawMessage(`{"card":"4111111111111111"}`), ArgsHash: "h1", Risk: warden.RiskCritical,
		Reasons:   []string{"customer jane@example.com asked"},
		Approvers: warden.Approvers{Users: []string{"alice", "bob"}, RequireSignature: true, Keys: map[string]string{"alice": "KEY"}},
		Quorum:    2, Requester: "dana", PolicyRevision: "rev", RequestedAt: now, ExpiresAt: now.Add(time.Hour),
		Approvals: []warden.ApprovalDecision{{RequestID: "apr_1", Decision: "approve", Approver: "alice", Reason: "secret note", Signature: "SIG"}},
		RunID:     "run-1", Nonce: "n1",
	}
	p := req.Pending()
	b, err := json.Marshal(p)
	require.NoError(t, err)
	for _, leak := range []string{"4111", "jane", "KEY", "secret note", "SIG", `"args"`, `"reasons"`} {
		require.NotContains(t, string(b), leak)
	}
	payload, err := converter.GetDefaultDataConverter().ToPayload([]warden.PendingApproval{p})
	require.NoError(t, err)
	got, err := client.PendingFromMemo(&commonpb.Memo{Fields: map[string]*commonpb.Payload{warden.MemoPending: payload}})
	require.NoError(t, err)
	require.Len(t, got, 1)
	back := got[0].Request()
	require.Equal(t, "h1", back.ArgsHash)
	require.Equal(t, "run-1", back.RunID, "a signature from the memo covers the run")
	require.Equal(t, "n1", back.Nonce)
	require.Empty(t, back.Args)
	require.Empty(t, back.Reasons)
	require.Nil(t, back.Approvers.Keys)
	require.Equal(t, []warden.ApprovalDecision{{RequestID: "apr_1", Decision: "approve", Approver: "alice"}}, back.Approvals)
	back.Approvers.RequireSignature = false
	require.ErrorContains(t, govern.CheckDecision(back, warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "alice"}, now), "already decided")
	require.NoError(t, govern.CheckDecision(back, warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "bob"}, now))

	none, err := client.PendingFromMemo(nil)
	require.NoError(t, err)
	require.Empty(t, none, "no memo: nothing pending")
	null, _ := converter.GetDefaultDataConverter().ToPayload(nil)
	none, err = client.PendingFromMemo(&commonpb.Memo{Fields: map[string]*commonpb.Payload{warden.MemoPending: null}})
	require.NoError(t, err)
	require.Empty(t, none, "a removed key: nothing pending")
	bad, _ := converter.GetDefaultDataConverter().ToPayload("not a list")
	_, err = client.PendingFromMemo(&commonpb.Memo{Fields: map[string]*commonpb.Payload{warden.MemoPending: bad}})
	require.ErrorContains(t, err, "not a list of pending approvals")
}
