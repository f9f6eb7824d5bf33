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
// testdata/agent_run_approved.json is a full run with an approval by Update,
// recorded on the real dev server by the worker integration test:
// `WARDEN_UPDATE_HISTORY=1 go test -run TestApprovalsThroughUpdateAndSignal ./worker/`.
// Regenerate it only for an intended, versioned change; keep the old file
// too, so histories of every released version keep replaying.
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
