package worker_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/sandbox"
	"github.com/wardenhq/warden/worker"
)

// sweepTestWorkflow continues as new once when asked (next > 0), then
// ends at once (done) or waits for a signal that never comes.
func sweepTestWorkflow(ctx workflow.Context, next int, done bool) error {
	if next > 0 {
		return workflow.NewContinueAsNewError(ctx, sweepTestWorkflow, next-1, done)
	}
	if done {
		return nil
	}
	workflow.GetSignalChannel(ctx, "never").Receive(ctx, nil)
	return nil
}

// TestSweeperRemovesClosedRunsWorkspacesOnly: against a real dev server,
// the workspaces of closed chains (completed, terminated, and a reused
// workflow ID's earlier chain) go, those of open chains (one continued as
// new) stay; links a tool planted to / and to a host directory take
// nothing outside the workspace with them; a record that names another
// folder removes nothing.
func TestSweeperRemovesClosedRunsWorkspacesOnly(t *testing.T) {
	srv := testenv.DevServer(t)
	tc := srv.Client()
	ctx := context.Background()
	queue := "sweep-" + testenv.RandomHex(4)
	w := sdkworker.New(tc, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(sweepTestWorkflow, workflow.RegisterOptions{Name: "sweepTest"})
	require.NoError(t, w.Start())
	defer w.Stop()

	start := func(id string, next int, done bool) client.WorkflowRun {
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, "sweepTest", next, done)
		require.NoError(t, err)
		return run
	}
	// With the tmpfs quota (as root) and with the budget walk, where the
	// host sees the planted links themselves.
	for _, mode := range []string{"", sandbox.QuotaBudget} {
		t.Run("quota="+mode, func(t *testing.T) {
			r, err := sandbox.New(sandbox.Options{DiskQuota: mode})
			require.NoError(t, err)
			t.Logf("quota: %s", r.Quota())
			sweepClosedOnly(t, tc, start, r)
		})
	}
}

func sweepClosedOnly(t *testing.T, tc client.Client, start func(id string, next int, done bool) client.WorkflowRun, r *sandbox.Runner) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "workspaces")
	outside := t.TempDir()
	sentinel := filepath.Join(outside, "sentinel")
	require.NoError(t, os.WriteFile(sentinel, []byte("intact"), 0o600))

	// workspace prepares the chain's workspace as Execute does and has a
	// tool write to it and plant links out of it.
	workspace := func(id, chain string) string {
		dir, err := activities.PrepareWorkspace(root, activities.RunRef{Tenant: "acme", WorkflowID: id, RunID: chain, ChainID: chain})
		require.NoError(t, err)
		res, err := r.Run(ctx, sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c",
			"echo data > file; mkdir sub; ln -s / root-link; ln -s " + outside + " host-link; ln -s " + sentinel + " sub/file-link"}})
		require.NoError(t, err)
		require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
		require.FileExists(t, filepath.Join(r.HostPath(dir), "file"))
		return dir
	}

	id := "sweep-" + testenv.RandomHex(4)
	completed := start(id+"-completed", 0, true)
	require.NoError(t, completed.Get(ctx, nil))
	terminated := start(id+"-terminated", 0, false)
	require.NoError(t, tc.TerminateWorkflow(ctx, terminated.GetID(), terminated.GetRunID(), "test"))
	open := start(id+"-open", 0, false)
	continued := start(id+"-continued", 1, false)
	require.Eventually(t, func() bool {
		d, err := tc.DescribeWorkflowExecution(ctx, continued.GetID(), "")
		return err == nil && d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != continued.GetRunID()
	}, 30*time.Second, 100*time.Millisecond, "the workflow did not continue as new")
	// A reused ID: the first chain terminated, a second one open.
	reusedOld := start(id+"-reused", 0, false)
	require.NoError(t, tc.TerminateWorkflow(ctx, reusedOld.GetID(), reusedOld.GetRunID(), "test"))
	reusedNew := start(id+"-reused", 0, false)

	gone := []string{
		workspace(completed.GetID(), completed.GetRunID()),
		workspace(terminated.GetID(), terminated.GetRunID()),
		workspace(reusedOld.GetID(), reusedOld.GetRunID()),
		// A workflow ID Temporal never heard of (or whose history retention removed).
		workspace(id+"-unknown", "00000000-0000-0000-0000-000000000000"),
	}
	kept := []string{
		workspace(open.GetID(), open.GetRunID()),
		workspace(continued.GetID(), continued.GetRunID()),
		workspace(reusedNew.GetID(), reusedNew.GetRunID()),
	}
	// A run of another namespace sharing the folder: this namespace's
	// client finds no such workflow, which must not count as closed.
	otherNS := workspace(id+"-other-namespace", "11111111-1111-1111-1111-111111111111")
	require.NoError(t, os.WriteFile(otherNS+activities.WorkspaceRecordSuffix, []byte(`{"namespace":"other","tenant":"acme","workflow_id":"`+
		id+`-other-namespace","chain_id":"11111111-1111-1111-1111-111111111111"}`), 0o600))
	kept = append(kept, otherNS)
	// A record rewritten to name another workspace is not trusted.
	forged := kept[0] + activities.WorkspaceRecordSuffix
	require.NoError(t, os.WriteFile(forged, []byte(`{"tenant":"acme","workflow_id":"`+completed.GetID()+`","chain_id":"`+completed.GetRunID()+`"}`), 0o600))

	rep := worker.SweepWorkspaces(ctx, tc, "default", root, r.RemoveWorkspace)
	t.Logf("removed %v, kept %d, errors %v", rep.Removed, rep.Kept, rep.Errors)
	require.ElementsMatch(t, gone, rep.Removed)
	require.Equal(t, len(kept)-1, rep.Kept)
	require.Len(t, rep.Errors, 1)
	require.ErrorContains(t, rep.Errors[0], "describes another workspace")
	for _, dir := range gone {
		require.NoDirExists(t, dir)
		require.NoFileExists(t, dir+activities.WorkspaceRecordSuffix)
		_, err := os.Lstat(r.HostPath(dir))
		require.ErrorIs(t, err, os.ErrNotExist, "the tmpfs of %s is still mounted", dir)
	}
	for _, dir := range kept {
		require.DirExists(t, dir)
		require.FileExists(t, filepath.Join(r.HostPath(dir), "file"), "an open run's workspace lost its files")
	}
	got, err := os.ReadFile(sentinel)
	require.NoError(t, err, "the sweep removed a file outside the workspaces")
	require.Equal(t, "intact", string(got))
	require.DirExists(t, "/usr/bin")

	// Once the open chains close, a later sweep takes their workspaces
	// (and the tenant folder with the last one).
	require.NoError(t, os.WriteFile(forged, []byte(`{"tenant":"acme","workflow_id":"`+open.GetID()+`","chain_id":"`+open.GetRunID()+`"}`), 0o600))
	for _, run := range []client.WorkflowRun{open, continued, reusedNew} {
		require.NoError(t, tc.TerminateWorkflow(ctx, run.GetID(), "", "test"))
	}
	rep = worker.SweepWorkspaces(ctx, tc, "default", root, r.RemoveWorkspace)
	require.Empty(t, rep.Errors)
	require.ElementsMatch(t, kept[:len(kept)-1], rep.Removed)
	require.Equal(t, 1, rep.Kept, "the other namespace's workspace is kept")
	// Its own namespace's sweeper (here: a record without a namespace is
	// anyone's) takes it once the record says so.
	require.NoError(t, os.WriteFile(otherNS+activities.WorkspaceRecordSuffix, []byte(`{"tenant":"acme","workflow_id":"`+
		id+`-other-namespace","chain_id":"11111111-1111-1111-1111-111111111111"}`), 0o600))
	rep = worker.SweepWorkspaces(ctx, tc, "default", root, r.RemoveWorkspace)
	require.Empty(t, rep.Errors)
	require.Equal(t, []string{otherNS}, rep.Removed)
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries, "the tenant folder outlived its last workspace")
	_, err = os.Stat(sentinel)
	require.NoError(t, err)
}

// TestWorkerRemovesTheWorkspaceWhenTheRunEnds: worker.Run starts the
// sweeper; a run whose tool ran (so its workspace was made) loses its
// workspace once it completes.
func TestWorkerRemovesTheWorkspaceWhenTheRunEnds(t *testing.T) {
	srv := testenv.DevServer(t)
	cfg := worker.Config{
		TemporalAddress:        srv.Address,
		TaskQueue:              "it-" + testenv.RandomHex(4),
		DataDir:                t.TempDir(),
		WorkspaceSweepInterval: 200 * time.Millisecond,
		Logger:                 slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	teststack.RunWorker(t, cfg)
	c := wclient.New(srv.Client(), cfg.TaskQueue)
	ctx := context.Background()
	id := "it-sweep-" + testenv.RandomHex(4)
	h, err := c.Start(ctx, refundRequest(), wclient.StartOptions{ID: id})
	require.NoError(t, err)
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		pending, err = c.PendingApprovals(ctx, id)
		return err == nil && len(pending) > 0
	}, 60*time.Second, 100*time.Millisecond)
	_, err = c.Decide(ctx, id, warden.ApprovalDecision{RequestID: pending[0].RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)
	res, err := c.Result(ctx, id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, 1, res.ToolCalls["executed"], "the refund ran, in the run's workspace")
	dir := activities.WorkspaceDir(filepath.Join(cfg.DataDir, "workspaces"), activities.RunRef{Tenant: "acme", WorkflowID: id, RunID: h.RunID, ChainID: h.RunID})
	require.Eventually(t, func() bool {
		_, err := os.Lstat(dir)
		_, recErr := os.Lstat(dir + activities.WorkspaceRecordSuffix)
		return os.IsNotExist(err) && os.IsNotExist(recErr)
	}, 30*time.Second, 100*time.Millisecond, "the workspace of the completed run is still there")
}
