package e2e

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/tools"
	"github.com/wardenhq/warden/worker"
)

func TestMain(m *testing.M) {
	tools.Reexec()
	os.Exit(m.Run())
}

// stack is a dev server with the Web UI and a worker (SQLite audit).
type stack struct {
	srv    *devserver.Server
	client *client.Client
	cfg    worker.Config
}

func startStack(t *testing.T) *stack {
	t.Helper()
	srv := testenv.DevServerWithUI(t)
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		TaskQueue:       "e2e-" + testenv.RandomHex(4),
		DataDir:         t.TempDir(),
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	teststack.RunWorker(t, cfg)
	return &stack{srv: srv, client: client.New(srv.Client(), cfg.TaskQueue), cfg: cfg}
}

// startRefund starts a refund run and waits for its approval request.
func (s *stack) startRefund(t *testing.T, timeout time.Duration) (string, warden.ApprovalRequest) {
	t.Helper()
	id := "e2e-" + testenv.RandomHex(4)
	_, err := s.client.Start(context.Background(), warden.RunRequest{
		Tenant: "acme", Requester: "dana", Goal: "Refund order A-1: the parcel arrived damaged.",
		Model: "scripted/refund", ApprovalTimeout: timeout,
	}, client.StartOptions{ID: id})
	require.NoError(t, err)
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		pending, err = s.client.PendingApprovals(context.Background(), id)
		return err == nil && len(pending) == 1
	}, 60*time.Second, 200*time.Millisecond)
	return id, pending[0]
}
