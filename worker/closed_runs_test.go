package worker_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/worker"
)

// TestARunTemporalTerminatedIsOnTheRecord (issue 13, class 3: a run that
// hits a Temporal limit ends with an audited run_finished). A run waiting
// for approval is terminated — as Temporal does at the history limit, or
// an operator does — so none of its code runs again. The worker writes its
// run_finished (status terminated, the reason, the request left pending),
// once, and the inbox stops listing it. Before, the audit ended at
// approval_requested and the inbox still showed the run awaiting approval.
func TestARunTemporalTerminatedIsOnTheRecord(t *testing.T) {
	srv := testenv.DevServer(t)
	cfg := worker.Config{
		TemporalAddress:        srv.Address,
		TaskQueue:              "it-" + testenv.RandomHex(4),
		DatabaseURL:            testenv.PostgresSchema(t),
		DataDir:                t.TempDir(),
		ClosedRunAuditInterval: 300 * time.Millisecond,
		Logger:                 slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	teststack.RunWorker(t, cfg)
	s := &stack{srv: srv, cfg: cfg, client: wclient.New(srv.Client(), cfg.TaskQueue)}
	ctx := context.Background()
	id := "it-terminated-" + testenv.RandomHex(4)
	run, err := s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: id})
	require.NoError(t, err)
	p := s.waitPending(t, id)
	require.Eventually(t, func() bool {
		inbox, err := s.client.Inbox(ctx, warden.InboxFilter{})
		return err == nil && len(inbox) == 1 && inbox[0].WorkflowID == id
	}, 30*time.Second, 200*time.Millisecond, "the waiting run is in the inbox")

	require.NoError(t, srv.Client().TerminateWorkflow(ctx, id, "", "history size exceeds limit (test)"))

	store, err := audit.OpenPostgres(ctx, cfg.DatabaseURL)
	require.NoError(t, err)
	defer store.Close()
	var finished []warden.AuditEvent
	require.Eventually(t, func() bool {
		finished, err = store.Query(ctx, warden.AuditFilter{WorkflowID: id, Type: warden.EventRunFinished})
		return err == nil && len(finished) > 0
	}, 30*time.Second, 200*time.Millisecond, "the terminated run gets its run_finished")
	ev := finished[0]
	require.Equal(t, "terminated", ev.Decision)
	require.Equal(t, run.RunID, ev.RunID)
	require.Equal(t, "acme", ev.Tenant)
	require.Contains(t, ev.Message, "history size exceeds limit (test)")
	require.Contains(t, ev.Message, p.RequestID, "the request left pending is named")

	// Later passes, and another worker's, write nothing more.
	rep := worker.AuditClosedRuns(ctx, srv.Client(), "default", store, time.Now().Add(-time.Hour))
	require.Empty(t, rep.Errors)
	require.Empty(t, rep.Recorded)
	require.GreaterOrEqual(t, rep.Checked, 1)
	time.Sleep(time.Second) // three more passes of the running worker
	finished, err = store.Query(ctx, warden.AuditFilter{WorkflowID: id, Type: warden.EventRunFinished})
	require.NoError(t, err)
	require.Len(t, finished, 1)
	rep2, err := audit.Verify(ctx, store, audit.VerifyOptions{Tenant: "acme", WorkflowID: id})
	require.NoError(t, err)
	require.Empty(t, rep2.Breaks, "the chain with the worker's row verifies")

	inbox, err := s.client.Inbox(ctx, warden.InboxFilter{})
	require.NoError(t, err)
	require.Empty(t, inbox, "a terminated run is no longer offered for approval")
}
