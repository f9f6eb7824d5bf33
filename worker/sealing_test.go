package worker_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/worker"
)

// A worker given a seal key and an anchor file signs every seal it makes
// and writes each one to the anchor, so an auditor holding only the public
// key and the anchor can check the log (and catch a deleted last seal).
func TestWorkerSignsAndAnchorsItsSeals(t *testing.T) {
	srv := testenv.DevServer(t)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "seal.key")
	priv, pub, err := audit.GenerateSealKey("worker-test", time.Now().Add(-time.Minute))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, priv, 0o600))
	anchorPath := filepath.Join(dir, "anchor.jsonl")
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		TaskQueue:       "seal-" + testenv.RandomHex(4),
		DatabaseURL:     testenv.PostgresSchema(t),
		DataDir:         dir,
		AuditSealKey:    keyPath,
		AuditAnchor:     anchorPath,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, func(*worker.Deps) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker stopped before polling: %v", err)
	}

	c := client.New(srv.Client(), cfg.TaskQueue)
	id := "seal-" + testenv.RandomHex(4)
	_, err = c.Start(ctx, refundRequest(), client.StartOptions{ID: id})
	require.NoError(t, err)
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		pending, err = c.PendingApprovals(ctx, id)
		return err == nil && len(pending) > 0
	}, 60*time.Second, 200*time.Millisecond)
	_, err = c.Decide(ctx, id, warden.ApprovalDecision{RequestID: pending[0].RequestID, Decision: "approve", Approver: "alice", Reason: "ok"})
	require.NoError(t, err)
	res, err := c.Result(ctx, id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)

	// Stopping seals once more (the final seal) and closes the anchor.
	stop()
	require.NoError(t, <-done)

	require.NoError(t, os.WriteFile(keyPath+".pub", pub, 0o644))
	key, err := audit.ParsePublicKey(keyPath + ".pub")
	require.NoError(t, err)
	log, err := audit.ReadAnchor(anchorPath)
	require.NoError(t, err)
	store, err := audit.Open(context.Background(), cfg.DatabaseURL, "")
	require.NoError(t, err)
	defer store.Close()
	report, err := audit.Verify(context.Background(), store, audit.VerifyOptions{
		Tenant: "acme", PublicKeys: []audit.PublicKey{key}, RequireSigned: true, Anchors: []*audit.AnchorLog{log},
	})
	require.NoError(t, err)
	require.True(t, report.OK(), "breaks: %+v", report.Breaks)
	require.Positive(t, report.Seals)
	require.Equal(t, report.Seals, report.Signed, "every seal the worker made is signed")
	require.Zero(t, report.Unsigned)
	require.Equal(t, report.Seals, report.Anchored, "every seal is in the anchor")
	require.Zero(t, report.Unsealed, "the final seal at stop covers the whole run")
}

// A seal key that cannot be read stops the worker before it polls, with
// an error naming the file and the command that makes one.
func TestWorkerRefusesAnUnreadableSealKey(t *testing.T) {
	cfg := worker.Config{TemporalAddress: "127.0.0.1:1", DataDir: t.TempDir(), AuditSealKey: filepath.Join(t.TempDir(), "missing.key")}
	err := worker.Run(context.Background(), cfg, func(*worker.Deps) { t.Fatal("worker started without its seal key") })
	require.ErrorContains(t, err, "missing.key")
	require.ErrorContains(t, err, "warden audit keygen")
}
