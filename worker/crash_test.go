package worker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/tools"
)

// buildWarden compiles the warden binary once for the test.
func buildWarden(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "warden")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/warden").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// TestWorkerKilledDuringNonIdempotentTool kills the worker process with
// SIGKILL while the approved refund is running (after its ledger write,
// during the simulated payment-provider latency), starts a new worker, and
// checks that the run completes, reports the unknown outcome instead of
// retrying, the refund happened exactly once, and the audit has no
// duplicate.
func TestWorkerKilledDuringNonIdempotentTool(t *testing.T) {
	bin := buildWarden(t)
	srv := testenv.DevServer(t)
	dsn := testenv.PostgresSchema(t)
	dataDir := t.TempDir()
	queue := "crash-" + testenv.RandomHex(4)
	env := append(os.Environ(),
		"WARDEN_TEMPORAL_ADDRESS="+srv.Address,
		"WARDEN_TASK_QUEUE="+queue,
		"WARDEN_DATABASE_URL="+dsn,
		"WARDEN_DATA_DIR="+dataDir,
		"WARDEN_REFUND_DELAY=20s",
	)
	startWorker := func() *exec.Cmd {
		cmd := exec.Command(bin, "worker")
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	first := startWorker()
	t.Cleanup(func() { _ = first.Process.Kill(); _, _ = first.Process.Wait() })

	ctx := context.Background()
	c := warden.NewClient(srv.Client(), queue)
	id := "crash-" + testenv.RandomHex(4)
	_, err := c.Start(ctx, refundRequest(), warden.StartOptions{ID: id})
	require.NoError(t, err)
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		pending, err = c.PendingApprovals(ctx, id)
		return err == nil && len(pending) == 1
	}, 90*time.Second, 200*time.Millisecond)
	_, err = c.Decide(ctx, id, warden.ApprovalDecision{RequestID: pending[0].RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)

	ledgerPath := filepath.Join(dataDir, "refunds.jsonl")
	require.Eventually(t, func() bool {
		entries, err := tools.ReadLedger(ledgerPath)
		return err == nil && len(entries) == 1
	}, 60*time.Second, 50*time.Millisecond, "the refund never reached the ledger")
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_, _ = first.Process.Wait()

	second := startWorker()
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _, _ = second.Process.Wait() })

	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := c.Result(waitCtx, id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, 1, res.ToolCalls["outcome_unknown"], "the run reports the unknown outcome: %+v", res)
	require.Zero(t, res.ToolCalls["executed"])
	require.Contains(t, res.Answer, "outcome unknown")

	entries, err := tools.ReadLedger(ledgerPath)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the non-idempotent refund ran exactly once")

	count := countEventsOnce(t, dsn, id)
	require.Equal(t, 1, count[warden.EventToolStarted])
	require.Equal(t, 1, count[warden.EventToolOutcomeUnknown])
	require.Zero(t, count[warden.EventToolExecuted])
	require.Equal(t, 1, count[warden.EventRunFinished])
}

// countEventsOnce reads a run's audit trail from Postgres, fails on any
// event recorded twice, and counts the events by type.
func countEventsOnce(t *testing.T, dsn, id string) map[warden.EventType]int {
	t.Helper()
	ctx := context.Background()
	store, err := audit.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer store.Close()
	evs, err := store.Query(ctx, warden.AuditFilter{WorkflowID: id})
	require.NoError(t, err)
	seen := map[string]bool{}
	count := map[warden.EventType]int{}
	for _, e := range evs {
		key := fmt.Sprintf("%s/%d/%s/%s", e.Type, e.Step, e.CallID, e.Actor)
		require.False(t, seen[key], "duplicate audit event %s", key)
		seen[key] = true
		count[e.Type]++
	}
	return count
}
