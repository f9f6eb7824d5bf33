package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
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

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestWorkerKilledAtRandom starts runs that each run a shell command and an
// approved, non-idempotent refund, while the worker process is SIGKILLed at
// random moments and restarted. Every run must finish; every audit chain
// must verify; no audit event may appear twice; and the ledger must hold at
// most one refund per run — exactly one for every run that reports the
// refund executed (a run may instead report an unknown outcome).
func TestWorkerKilledAtRandom(t *testing.T) {
	runs := envInt("WARDEN_CHAOS_RUNS", 6)
	kills := envInt("WARDEN_CHAOS_KILLS", 3)

	binDir := t.TempDir()
	for name, pkg := range map[string]string{"warden": "../cmd/warden", "warden-sandbox-init": "../sandbox/cmd/warden-sandbox-init", "warden-tools": "../tools/cmd/warden-tools"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	srv := testenv.DevServer(t)
	dsn := testenv.PostgresSchema(t)
	dataDir := t.TempDir()
	queue := "chaos-" + testenv.RandomHex(4)
	env := append(os.Environ(),
		"WARDEN_TEMPORAL_ADDRESS="+srv.Address, "WARDEN_TASK_QUEUE="+queue,
		"WARDEN_DATABASE_URL="+dsn, "WARDEN_DATA_DIR="+dataDir, "WARDEN_REFUND_DELAY=300ms",
		"WARDEN_LOG_LEVEL=warn",
	)
	var mu sync.Mutex
	var worker *exec.Cmd
	start := func() {
		cmd := exec.Command(filepath.Join(binDir, "warden"), "worker")
		cmd.Env = env
		require.NoError(t, cmd.Start())
		mu.Lock()
		worker = cmd
		mu.Unlock()
	}
	start()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		_ = worker.Process.Signal(syscall.SIGKILL)
		_, _ = worker.Process.Wait()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := client.New(srv.Client(), queue)
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = fmt.Sprintf("chaos-%s-%d", queue, i)
		_, err := c.Start(ctx, warden.RunRequest{Tenant: "acme", Requester: "dana", Goal: "chaos", Model: "scripted/demo"},
			client.StartOptions{ID: ids[i]})
		require.NoError(t, err)
	}

	// The approver approves whatever waits; the killer kills the worker.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, id := range ids {
				ps, err := c.PendingApprovals(ctx, id)
				if err != nil {
					continue
				}
				for _, p := range ps {
					_, _ = c.Decide(ctx, id, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice"})
				}
			}
		}
	}()
	killed := 0
	go func() {
		defer wg.Done()
		for killed < kills {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(500+rand.IntN(1500)) * time.Millisecond):
			}
			mu.Lock()
			_ = worker.Process.Signal(syscall.SIGKILL)
			_, _ = worker.Process.Wait()
			mu.Unlock()
			killed++
			start()
		}
	}()

	results := map[string]warden.RunResult{}
	for _, id := range ids {
		res, err := c.Result(ctx, id)
		require.NoError(t, err, id)
		results[id] = res
	}
	close(done)
	wg.Wait()

	store, err := audit.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer store.Close()
	report, err := audit.Verify(ctx, store, audit.VerifyOptions{Tenant: "acme"})
	require.NoError(t, err)
	require.Empty(t, report.Breaks, "every audit chain verifies")

	ledger, err := tools.ReadLedger(filepath.Join(dataDir, "refunds.jsonl"))
	if err != nil && !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	perKey := map[string]int{}
	for _, e := range ledger {
		perKey[e.IdempotencyKey]++
	}
	executed, unknown := 0, 0
	for _, id := range ids {
		res := results[id]
		require.Equal(t, warden.StatusCompleted, res.Status, "%s: %+v", id, res)
		evs, err := store.Query(ctx, warden.AuditFilter{WorkflowID: id, Limit: audit.MaxQueryLimit})
		require.NoError(t, err)
		seen := map[string]bool{}
		refundRan := false
		for _, e := range evs {
			key := fmt.Sprintf("%s/%d/%s/%s/%s", e.Type, e.Step, e.CallID, e.Actor, e.RequestID)
			if e.Type != warden.EventEgressConnection && e.Type != warden.EventApprovalRefused && !(seen[key] && planRetryRecord(e)) {
				require.False(t, seen[key], "%s: duplicate audit event %s", id, key)
			}
			seen[key] = true
			if e.Type == warden.EventToolExecuted && e.Tool == "issue_refund" {
				refundRan = true
			}
		}
		if refundRan {
			executed++
		} else {
			unknown++
		}
	}
	for key, n := range perKey {
		require.Equal(t, 1, n, "refund %s happened %d times", key, n)
	}
	require.GreaterOrEqual(t, len(ledger), executed, "every refund reported executed is in the ledger")
	require.LessOrEqual(t, len(ledger), runs, "at most one refund per run")
	t.Logf("chaos: %d runs, %d worker kills; all completed; %d refunds executed, %d not reported executed; ledger %d; %d audit events verified in %d chains",
		runs, killed, executed, unknown, len(ledger), report.Events, report.Chains)
}
