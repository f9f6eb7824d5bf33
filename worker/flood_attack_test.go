package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/internal/testenv"
)

// TestASignalFloodCannotEndAWaitingRun (issue 13, class 3: floods). Anyone
// who may signal a run sends it refused approve Signals as large as the
// server takes. On Temporal's defaults (2 MiB payloads, 10,000 Signals per
// run) sixty 900 KiB Signals pass the 50 MiB history limit and Temporal
// terminates the run with nothing audited. With the dev server's limits
// (devserver.MaxPayloadBytes, MaxSignalsPerRun; docker-compose.yml has the
// same) a payload over 1 MiB is refused at the door, the server stops
// taking Signals after 32, the run keeps waiting, its approver approves it
// by Update, and it ends with run_finished on the record.
func TestASignalFloodCannotEndAWaitingRun(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	id := "it-flood-" + testenv.RandomHex(4)
	_, err := s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: id})
	require.NoError(t, err)
	p := s.waitPending(t, id)

	tc := s.srv.Client()
	huge := warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "mallory", Reason: strings.Repeat("x", devserver.MaxPayloadBytes+1)}
	err = tc.SignalWorkflow(ctx, id, "", warden.SignalApprove, huge)
	require.Error(t, err, "a Signal over the payload limit is refused by the server")
	t.Logf("oversize Signal: %v", err)

	big := warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "mallory", Reason: strings.Repeat("x", 900<<10)}
	accepted := 0
	var refused error
	for range 60 {
		if refused = tc.SignalWorkflow(ctx, id, "", warden.SignalApprove, big); refused != nil {
			break
		}
		accepted++
	}
	require.Error(t, refused, "the server stops taking Signals (accepted %d)", accepted)
	require.Equal(t, devserver.MaxSignalsPerRun, accepted, "the server takes MaxSignalsPerRun Signals per run")
	t.Logf("after %d Signals: %v", accepted, refused)

	desc, err := tc.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus(), "the flood did not end the run")
	t.Logf("history after the flood: %d bytes, %d events", desc.GetWorkflowExecutionInfo().GetHistorySizeBytes(), desc.GetWorkflowExecutionInfo().GetHistoryLength())

	receipt, err := s.client.Decide(ctx, id, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)
	require.Equal(t, warden.ApprovalStatusApproved, receipt.Status)
	res, err := s.client.Result(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 1, res.ToolCalls["executed"])

	store, err := audit.OpenPostgres(ctx, s.cfg.DatabaseURL)
	require.NoError(t, err)
	defer store.Close()
	var refusals, finished int
	require.Eventually(t, func() bool {
		evs, err := store.Query(ctx, warden.AuditFilter{WorkflowID: id})
		if err != nil {
			return false
		}
		refusals, finished = 0, 0
		for _, ev := range evs {
			switch ev.Type {
			case warden.EventApprovalRefused:
				refusals++
			case warden.EventRunFinished:
				finished++
			}
		}
		return finished == 1
	}, 30*time.Second, 250*time.Millisecond, "the run's end is on the record")
	require.GreaterOrEqual(t, refusals, 20, "the refused Signals are audited (the first 20 in full, then in summary)")
}
