package worker_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/tools"
)

// TestSIGTERMDuringToolRunLosesNothing sends SIGTERM to `warden worker`
// while the approved, non-idempotent refund is running (after its ledger
// write, during the simulated payment-provider latency). The worker stops
// polling but lets the activity finish (WARDEN_STOP_TIMEOUT), exits 0, and a
// new worker finishes the run: the refund ran once and completed normally
// (no "outcome unknown"), and the audit holds each event once.
func TestSIGTERMDuringToolRunLosesNothing(t *testing.T) {
	const delay = 4 * time.Second
	p := newProcessStack(t, "sigterm", "WARDEN_REFUND_DELAY="+delay.String(), "WARDEN_STOP_TIMEOUT=30s")
	first := p.startWorker(t)
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	t.Cleanup(func() { _ = first.Process.Kill() })
	ctx := context.Background()
	c := p.client
	id := "sigterm-" + testenv.RandomHex(4)
	p.refundInFlight(t, id, 20*time.Millisecond)
	termAt := time.Now()
	require.NoError(t, first.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "the worker exits 0 on SIGTERM")
	case <-time.After(45 * time.Second):
		t.Fatal("the worker did not exit within its stop timeout")
	}
	stopped := time.Since(termAt)
	t.Logf("worker exited %s after SIGTERM (tool delay %s)", stopped.Round(time.Millisecond), delay)
	require.Greater(t, stopped, delay/2, "the worker waited for the in-flight tool instead of cancelling it")

	second := p.startWorker(t)
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _, _ = second.Process.Wait() })
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := c.Result(waitCtx, id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, 1, res.ToolCalls["executed"], "the tool finished normally: %+v", res)
	require.Zero(t, res.ToolCalls["outcome_unknown"])

	entries, err := tools.ReadLedger(p.ledgerPath())
	require.NoError(t, err)
	require.Len(t, entries, 1, "the refund ran exactly once")

	count := countEventsOnce(t, p.dsn, id)
	require.Equal(t, 1, count[warden.EventToolStarted])
	require.Equal(t, 1, count[warden.EventToolExecuted])
	require.Zero(t, count[warden.EventToolOutcomeUnknown])
	require.Zero(t, count[warden.EventToolFailed])
	require.Equal(t, 1, count[warden.EventRunFinished])
}
