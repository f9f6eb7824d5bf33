package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/workflows"
)

// TestReplayCommittedHistories replays every history in testdata/ against
// today's AgentRun. A change that would break running workflows (a
// different command sequence for the same events) fails here.
//
// The histories are recorded on the real dev server by the worker
// integration tests (`WARDEN_UPDATE_HISTORY=1 go test -run
// 'TestApprovalsThroughUpdateAndSignal|TestEditAndOutOfOrder|TestEscalationAndQuorum' ./worker/`):
// agent_run_approved.json (approval by Update), agent_run_edited.json
// (approval with edited args), agent_run_two_calls.json (two pending calls
// decided out of order, one by Signal), agent_run_escalated_quorum.json
// (escalation timer and activity, two approvers). Files ending in _vN.json are
// histories of older workflow code and are never regenerated:
// agent_run_approved_v0.json predates the approval-identities step and
// proves its workflow.GetVersion gate; the *_v1.json files predate
// authorize-in-plan (every call decided by the Authorize local activity);
// agent_run_approved_v2.json predates the pending-memo step (the memo key
// warden.pending); agent_run_approved_v3.json predates the frozen-turn
// step (Execute re-decided with the taint as it grew during the turn);
// agent_run_approved_v4.json and agent_run_edited_v4.json predate the
// approval-record step (an edit recorded as approved before the policy saw
// it, names compared as typed, decision event IDs without their sequence),
// which the four regenerated files record; agent_run_approved_v5.json
// predates the refusal-limits step (a Signal that does not decode dropped
// unaudited, one of any size applied, every refused Signal audited in
// full); agent_run_approved_v6.json predates the run-bound-approvals step
// (requests without run ID and nonce, signatures over request, arguments
// and decision only).
func TestReplayCommittedHistories(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no committed histories to replay")
	for _, f := range files {
		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflowWithOptions(workflows.AgentRun, workflow.RegisterOptions{Name: warden.WorkflowAgentRun})
		require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, f), f)
	}
}
