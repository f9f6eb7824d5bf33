package worker_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
)

// TestASignedApprovalDoesNotReplayIntoAResetRun (issue 13, class 2:
// approvals replayed across runs). alice's signed approval of a refund is
// readable in the run's history. An operator resets the run to its first
// workflow task (signals and updates not reapplied): the new run belongs
// to the same chain and asks for the same call again, under the same
// request ID. Replaying alice's old, correctly signed decision must approve
// nothing there — the signature covers the run it was made for and the
// request's nonce — and the refusal is audited; a fresh signature over the
// new request approves it.
func TestASignedApprovalDoesNotReplayIntoAResetRun(t *testing.T) {
	pub, alice, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "signed.rego"), []byte(fmt.Sprintf(`package warden.authz

decision := {
	"allow": true,
	"require_approval": true,
	"reasons": ["test policy: one signed approval by alice"],
	"risk": "high",
	"approvers": {"users": ["alice"], "require_signature": true, "keys": {"alice": %q}},
	"quorum": 1,
	"obligations": {"timeout_seconds": 30, "max_output_bytes": 65536},
}
`, base64.StdEncoding.EncodeToString(pub))), 0o644))
	s := startStackWith(t, dir)
	ctx := context.Background()
	id := "it-reset-" + testenv.RandomHex(4)
	run, err := s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: id})
	require.NoError(t, err)
	first := s.waitPending(t, id)
	signed, err := warden.SignApproval(alice, first, warden.ApprovalDecision{RequestID: first.RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)
	receipt, err := s.client.Decide(ctx, id, signed)
	require.NoError(t, err)
	require.Equal(t, warden.ApprovalStatusApproved, receipt.Status)
	res, err := s.client.Result(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 1, res.ToolCalls["executed"])

	// Reset to the first completed workflow task, before the request.
	var resetAt int64
	for _, ev := range history(t, s.srv.Client(), id).Events {
		if ev.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			resetAt = ev.GetEventId()
			break
		}
	}
	require.NotZero(t, resetAt)
	reset, err := s.srv.Client().ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 "default",
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: id, RunId: run.RunID},
		Reason:                    "replay attack test",
		WorkflowTaskFinishEventId: resetAt,
		RequestId:                 testenv.RandomHex(8),
		ResetReapplyExcludeTypes:  []enums.ResetReapplyExcludeType{enums.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL, enums.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE},
	})
	require.NoError(t, err)
	require.NotEqual(t, run.RunID, reset.GetRunId())
	again := s.waitPending(t, id)
	require.Equal(t, first.RequestID, again.RequestID, "the reset run asks for the same call under the same request ID (same chain, step, call and args)")
	require.Equal(t, reset.GetRunId(), again.RunID, "the request names the run it was opened in")
	require.NotEqual(t, first.Nonce, again.Nonce, "a reset run draws a new nonce")

	// The replayed signature, by Update and by Signal, approves nothing.
	_, err = s.client.Decide(ctx, id, signed)
	require.ErrorIs(t, err, warden.ErrApprovalInvalid)
	require.ErrorContains(t, err, "does not verify")
	require.NoError(t, s.srv.Client().SignalWorkflow(ctx, id, "", warden.SignalApprove, signed))
	store, err := audit.OpenPostgres(ctx, s.cfg.DatabaseURL)
	require.NoError(t, err)
	defer store.Close()
	require.Eventually(t, func() bool {
		evs, err := store.Query(ctx, warden.AuditFilter{WorkflowID: id, Type: warden.EventApprovalRefused})
		return err == nil && len(evs) >= 2
	}, 30*time.Second, 250*time.Millisecond, "both replays are audited as approval_refused")
	pending, err := s.client.PendingApprovals(ctx, id)
	require.NoError(t, err)
	require.Len(t, pending, 1, "the replayed signal approved nothing")
	require.Empty(t, pending[0].Approvals)

	// alice signs the new request: that one counts.
	fresh, err := warden.SignApproval(alice, again, warden.ApprovalDecision{RequestID: again.RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)
	receipt, err = s.client.Decide(ctx, id, fresh)
	require.NoError(t, err)
	require.Equal(t, warden.ApprovalStatusApproved, receipt.Status)
	res, err = s.client.Result(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 1, res.ToolCalls["executed"])
}
