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
	"github.com/wardenhq/warden/client"
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

// processStack runs `warden worker` as its own process, so a test can
// kill or stop it, on a dev server with a throwaway Postgres schema.
type processStack struct {
	bin, dsn, dataDir string
	env               []string
	client            *client.Client
}

func newProcessStack(t *testing.T, prefix string, extraEnv ...string) *processStack {
	t.Helper()
	p := &processStack{bin: buildWarden(t), dsn: testenv.PostgresSchema(t), dataDir: t.TempDir()}
	srv := testenv.DevServer(t)
	queue := prefix + "-" + testenv.RandomHex(4)
	p.env = append(append(os.Environ(),
		"WARDEN_TEMPORAL_ADDRESS="+srv.Address,
		"WARDEN_TASK_QUEUE="+queue,
		"WARDEN_DATABASE_URL="+p.dsn,
		"WARDEN_DATA_DIR="+p.dataDir,
	), extraEnv...)
	p.client = client.New(srv.Client(), queue)
	return p
}

func (p *processStack) startWorker(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(p.bin, "worker")
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	return cmd
}

func (p *processStack) ledgerPath() string { return filepath.Join(p.dataDir, "refunds.jsonl") }

// refundInFlight starts a refund run, approves it, and returns once the
// refund reached the ledger: the tool is then in its simulated provider delay.
func (p *processStack) refundInFlight(t *testing.T, id string, poll time.Duration) {
	t.Helper()
	ctx := context.Background()
	_, err := p.client.Start(ctx, refundRequest(), client.StartOptions{ID: id})
	require.NoError(t, err)
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		pending, err = p.client.PendingApprovals(ctx, id)
		return err == nil && len(pending) == 1
	}, 90*time.Second, 200*time.Millisecond)
	_, err = p.client.Decide(ctx, id, warden.ApprovalDecision{RequestID: pending[0].RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		entries, err := tools.ReadLedger(p.ledgerPath())
		return err == nil && len(entries) == 1
	}, 60*time.Second, poll, "the refund never reached the ledger")
}

// TestWorkerKilledDuringNonIdempotentTool kills the worker process with
// SIGKILL while the approved refund is running (after its ledger write,
// during the simulated payment-provider latency), starts a new worker, and
// checks that the run completes, reports the unknown outcome instead of
// retrying, the refund happened exactly once, and the audit has no
// duplicate.
func TestWorkerKilledDuringNonIdempotentTool(t *testing.T) {
	p := newProcessStack(t, "crash", "WARDEN_REFUND_DELAY=20s")
	first := p.startWorker(t)
	t.Cleanup(func() { _ = first.Process.Kill(); _, _ = first.Process.Wait() })
	ctx := context.Background()
	c := p.client
	id := "crash-" + testenv.RandomHex(4)
	p.refundInFlight(t, id, 50*time.Millisecond)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_, _ = first.Process.Wait()

	second := p.startWorker(t)
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _, _ = second.Process.Wait() })

	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := c.Result(waitCtx, id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, 1, res.ToolCalls["outcome_unknown"], "the run reports the unknown outcome: %+v", res)
	require.Zero(t, res.ToolCalls["executed"])
	require.Contains(t, res.Answer, "outcome unknown")

	entries, err := tools.ReadLedger(p.ledgerPath())
	require.NoError(t, err)
	require.Len(t, entries, 1, "the non-idempotent refund ran exactly once")

	count := countEventsOnce(t, p.dsn, id)
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
