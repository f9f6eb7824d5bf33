package chaos_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/worker"
)

// TestPostgresRestartedMidRun keeps the audit database of a worker under
// load going away: a private PostgreSQL cluster (fsync on) is restarted,
// alternately cleanly ("fast") and as a crash ("immediate"), while demo
// runs are executing tools and appending audit events. Every run must
// complete; every chain must verify; each run must hold exactly the events
// its steps imply; the non-idempotent refund must have run at most once
// per run, and exactly once for every run that reports it executed.
func TestPostgresRestartedMidRun(t *testing.T) {
	runs := envInt("WARDEN_CHAOS_PG_RUNS", 12)
	restarts := envInt("WARDEN_CHAOS_PG_RESTARTS", 2)
	gap := time.Duration(envInt("WARDEN_CHAOS_PG_GAP_MS", 300)) * time.Millisecond
	// downFor keeps the database down between stop and start, so appends
	// meet refused connections as well as connections cut mid-transaction.
	downFor := time.Duration(envInt("WARDEN_CHAOS_PG_DOWN_MS", 1000)) * time.Millisecond

	pg := testenv.StartPrivatePostgres(t)
	srv := testenv.DevServer(t)
	dataDir := t.TempDir()
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		TaskQueue:       "chaos-pg-" + testenv.RandomHex(4),
		DatabaseURL:     pg.URL,
		DataDir:         dataDir,
		RefundDelay:     300 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	teststack.RunWorker(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const tenant = "acme"
	load := newDemoLoad(client.New(srv.Client(), cfg.TaskQueue), tenant, cfg.TaskQueue)
	approveCtx, stopApproving := context.WithCancel(ctx)
	defer stopApproving()
	go load.approve(approveCtx)

	restartsDone := load.restartDuring(runs, restarts, gap, func(i int) (string, error) {
		mode := []string{"fast", "immediate"}[i%2]
		if err := pg.Stop(mode); err != nil {
			return mode, err
		}
		time.Sleep(downFor)
		return mode, pg.Start()
	})
	load.start(ctx, t, runs, gap)
	done := <-restartsDone
	lastBack := time.Now()
	results := load.wait(t)
	stopApproving()
	t.Logf("the last runs finished %s after the last restart", time.Since(lastBack).Round(100*time.Millisecond))
	for _, r := range done {
		require.NoError(t, r.err, pg.Log())
		t.Logf("%s postgres stop -m %s with %d runs in flight: back after %s", r.at.Format("15:04:05.000"), r.how, r.inFlight, r.took.Round(time.Millisecond))
	}

	store, err := audit.OpenPostgres(ctx, pg.URL)
	require.NoError(t, err)
	defer store.Close()
	c := checkDemoRuns(ctx, t, store, tenant, results, filepath.Join(dataDir, "refunds.jsonl"))
	t.Logf("postgres chaos: %d runs, %d restarts (fast and immediate alternating); %d/%d completed; refunds: %d executed, %d outcome unknown (%d of them never reached the ledger); shell outcome unknown %d; calls that ran but were reported unknown %d; ledger %d, 0 twice; %d audit events in %d chains verified, 0 duplicates, 0 missing",
		runs, len(done), c.completed, c.runs, c.refundsExecuted, c.unknown, c.refundNotInLedger, c.shellUnknown, c.resultLost, c.ledger, c.events, c.chains)
}
