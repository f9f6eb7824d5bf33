package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/bench"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/worker"
)

// stoppableWorker runs worker.Run with cfg until stop is called (or the
// test ends) and fails the test if it does not poll within a minute or
// ends with an error.
func stoppableWorker(t *testing.T, cfg worker.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, func(*worker.Deps) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("worker stopped before polling: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("worker not ready after 60s")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(stop)
	return stop
}

// TestCLIPendingAndApproveWithoutAWorker parks a run awaiting approval,
// then stops its only worker so that nothing answers queries or Updates:
// `warden pending` still lists the request (from the memo, and says so),
// `warden approve` without a request ID finds it there and, the Update not
// being taken, records the approval through the Signal (and says so).
// When a worker is back, the run completes with that one approval.
func TestCLIPendingAndApproveWithoutAWorker(t *testing.T) {
	srv := testenv.DevServer(t)
	dataDir := t.TempDir()
	cfg := worker.Config{
		DataDir: dataDir, TemporalAddress: srv.Address, TaskQueue: "cli-" + testenv.RandomHex(4),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	conn := []string{"--address", srv.Address, "--task-queue", cfg.TaskQueue}
	stop := stoppableWorker(t, cfg)

	id := "cli-down-" + testenv.RandomHex(4)
	_, err := cli(t, append([]string{"run", "--tenant", "acme", "--requester", "dana", "--goal", "refund A-1",
		"--model", "scripted/refund", "--id", id}, conn...)...)
	require.NoError(t, err)
	var live []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		out, stderr, err := cliStderr(t, append([]string{"pending", id, "-o", "json"}, conn...)...)
		return err == nil && strings.Contains(stderr, "source: live query") && json.Unmarshal([]byte(out), &live) == nil && len(live) == 1
	}, time.Minute, 300*time.Millisecond)
	require.NotEmpty(t, live[0].Args, "the live query has the arguments")

	stop() // no worker polls the task queue from here on

	out, stderr, err := cliStderr(t, append([]string{"pending", id, "-o", "json", "--query-timeout", "2s"}, conn...)...)
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, "source: memo")
	require.Contains(t, stderr, "the live query failed: ")
	var memo []warden.ApprovalRequest
	require.NoError(t, json.Unmarshal([]byte(out), &memo), "pending -o json stays a JSON array on stdout: %q", out)
	require.Len(t, memo, 1)
	require.Equal(t, live[0].RequestID, memo[0].RequestID)
	require.Equal(t, "issue_refund", memo[0].Tool)
	require.Equal(t, live[0].ArgsHash, memo[0].ArgsHash)
	require.Equal(t, warden.RiskHigh, memo[0].Risk)
	require.Equal(t, "null", string(memo[0].Args), "the memo has no arguments")
	require.Empty(t, memo[0].Reasons, "the memo has no policy reasons")

	table, stderr, err := cliStderr(t, append([]string{"pending", id, "--query-timeout", "2s"}, conn...)...)
	require.NoError(t, err, stderr)
	require.Contains(t, table, live[0].RequestID)
	require.Contains(t, table, "(not in the memo)")

	_, _, err = cliStderr(t, append([]string{"approve", id, "--as", "dana", "--query-timeout", "2s", "--update-timeout", "2s"}, conn...)...)
	require.ErrorContains(t, err, "may not approve", "the Signal fallback checks the request as the workflow would")

	out, stderr, err = cliStderr(t, append([]string{"approve", id, "--as", "alice", "--reason", "verified",
		"--query-timeout", "2s", "--update-timeout", "3s", "-o", "json"}, conn...)...)
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, "via: signal")
	require.Contains(t, stderr, "the Update was not delivered: ")
	var receipt warden.ApprovalReceipt
	require.NoError(t, json.Unmarshal([]byte(out), &receipt), out)
	require.Equal(t, live[0].RequestID, receipt.RequestID)
	require.Equal(t, warden.ApprovalStatusSignalled, receipt.Status)

	desc, err := srv.Client().DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	require.Equal(t, "Running", desc.GetWorkflowExecutionInfo().GetStatus().String(), "no worker ran the approval yet")

	stoppableWorker(t, cfg) // the worker is back
	require.Eventually(t, func() bool {
		out, err := cli(t, append([]string{"status", id, "-o", "json"}, conn...)...)
		var st warden.RunState
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Status == warden.StatusCompleted && st.ToolCalls["executed"] == 1
	}, time.Minute, 300*time.Millisecond, "the run completes with the approval")

	out, err = cli(t, "audit", "--data-dir", dataDir, "--workflow", id, "--type", "approval_decided", "-o", "jsonl")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, "one decision, applied once: %s", out)
	var ev warden.AuditEvent
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &ev))
	require.Equal(t, "alice", ev.Actor)
	require.Equal(t, live[0].RequestID, ev.RequestID)
	require.Regexp(t, `^approve via (signal|update): verified`, ev.Message)
	// The timed-out Updates stayed admitted on the server and reach the
	// worker with the Signal: dana's is refused, and of alice's Update and
	// Signal one is applied and the other refused. Every refusal is audited
	// (a refused Update by the worker, as it leaves no history).
	out, err = cli(t, "audit", "--data-dir", dataDir, "--workflow", id, "--type", "approval_refused", "-o", "jsonl")
	require.NoError(t, err)
	var refusedBy []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r warden.AuditEvent
		require.NoError(t, json.Unmarshal([]byte(l), &r), out)
		refusedBy = append(refusedBy, r.Actor)
		if r.Actor == "dana" {
			require.Contains(t, r.Message, "update refused")
			require.Contains(t, r.Message, "may not approve")
		} else {
			require.Regexp(t, `^(signal|update) refused: `, r.Message)
		}
	}
	require.ElementsMatch(t, []string{"dana", "alice"}, refusedBy, out)

	desc, err = srv.Client().DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	ps, err := client.PendingFromMemo(desc.GetWorkflowExecutionInfo().GetMemo())
	require.NoError(t, err)
	require.Empty(t, ps, "nothing pending once decided")
	require.NotContains(t, desc.GetWorkflowExecutionInfo().GetMemo().GetFields(), warden.MemoPending, "the key is removed, not left null")
}

// TestCLIBenchParkedPrintsTheTableBeforeFailing: when approvals fail,
// `warden bench parked` prints progress, the result table and the list of
// failed runs, and only then exits non-zero.
func TestCLIBenchParkedPrintsTheTableBeforeFailing(t *testing.T) {
	srv := testenv.DevServer(t)
	out, stderr, err := cliStderr(t, "bench", "parked", "--address", srv.Address, "--runs", "2", "--approver", "mallory", "--progress-every", "100ms")
	require.ErrorContains(t, err, "2 of 2 runs failed")
	require.Contains(t, out, "COMPLETED")
	require.Contains(t, out, "FAILED")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, "header and one row: %s", out)
	require.Regexp(t, `^2 `, lines[1], "the row is printed: %s", out)
	require.Contains(t, stderr, "parking: 2/2 started")
	require.Contains(t, stderr, "approving: ")
	require.Contains(t, stderr, "2 failed (the first 2):")
	require.Regexp(t, `approve bench-parked-[0-9]+-[01]: .*mallory is not among the approvers`, stderr)
}

// TestCLIBenchParkedWithWorkerProcesses: --workers 2 runs two worker
// processes (this binary as `warden worker`) on one task queue with one
// PostgreSQL audit; every run parks and completes, and the memory reported
// is the worker processes'. Without --database-url it refuses.
func TestCLIBenchParkedWithWorkerProcesses(t *testing.T) {
	t.Setenv("WARDEN_TEST_BINARY_IS_CLI", "1") // the worker processes run this binary
	srv := testenv.DevServer(t)
	_, err := cli(t, "bench", "parked", "--address", srv.Address, "--runs", "2", "--workers", "2")
	require.ErrorContains(t, err, "set --database-url")

	out, stderr, err := cliStderr(t, "bench", "parked", "--address", srv.Address, "--runs", "6", "--workers", "2",
		"--database-url", testenv.PostgresSchema(t), "--concurrency", "6", "-o", "json")
	require.NoError(t, err, stderr)
	var one bench.ParkedReport
	require.NoError(t, json.Unmarshal([]byte(out), &one), out)
	rep := []bench.ParkedReport{one}
	require.Equal(t, 2, rep[0].Workers)
	require.Equal(t, 6, rep[0].Parked)
	require.Equal(t, 6, rep[0].Completed)
	require.Zero(t, rep[0].Failed)
	require.Zero(t, rep[0].HeapInUse, "no worker heap in the benchmark's process")
	self, _ := procStatusRSS()
	require.Greater(t, rep[0].RSS, int64(0))
	require.NotEqual(t, self, rep[0].RSS, "the worker processes' memory, not this process's")
}

func procStatusRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			var kb int64
			_, err := fmt.Sscan(f[1], &kb)
			return kb << 10, err
		}
	}
	return 0, nil
}
