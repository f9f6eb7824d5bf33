package chaos_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/wardenhq/warden/audit"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/worker"
)

// TestTemporalRestartedMidRun takes the Temporal server away under load:
// a dev server keeping its state in a SQLite file is killed (SIGKILL, and
// alternately stopped cleanly) while demo runs are executing, and started
// again on the same port with the same file. The worker and the clients
// must reconnect by themselves; every run must complete with its audit
// intact (chains verify, exactly the expected events, none twice) and the
// refund run at most once per run.
func TestTemporalRestartedMidRun(t *testing.T) {
	runs := envInt("WARDEN_CHAOS_TEMPORAL_RUNS", 8)
	restarts := envInt("WARDEN_CHAOS_TEMPORAL_RESTARTS", 2)
	gap := time.Duration(envInt("WARDEN_CHAOS_TEMPORAL_GAP_MS", 500)) * time.Millisecond
	// downFor keeps the server away before it starts again (it is back in
	// a fraction of a second otherwise): pollers, activity completions,
	// queries and updates all meet a dead port for that long.
	downFor := time.Duration(envInt("WARDEN_CHAOS_TEMPORAL_DOWN_MS", 2000)) * time.Millisecond

	dbFile := filepath.Join(t.TempDir(), "temporal.db")
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var mu sync.Mutex
	var srv *devserver.Server
	startServer := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s, err := devserver.Start(ctx, devserver.Options{Port: port, DBFile: dbFile, Logger: testenv.QuietLogger(), Stdout: io.Discard, Stderr: io.Discard})
		if err != nil {
			return err
		}
		mu.Lock()
		srv = s
		mu.Unlock()
		return nil
	}
	require.NoError(t, startServer())
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		_ = srv.Stop()
	})

	dataDir := t.TempDir()
	dsn := testenv.PostgresSchema(t)
	cfg := worker.Config{
		TemporalAddress: addr,
		TaskQueue:       "chaos-temporal-" + testenv.RandomHex(4),
		DatabaseURL:     dsn,
		DataDir:         dataDir,
		RefundDelay:     300 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	teststack.RunWorker(t, cfg)

	// The test's own client, not the server object's: it outlives each server.
	tc, err := client.Dial(client.Options{HostPort: addr, Logger: testenv.QuietLogger()})
	require.NoError(t, err)
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tenant := "acme-" + testenv.RandomHex(3)
	load := newDemoLoad(wclient.New(tc, cfg.TaskQueue), tenant, cfg.TaskQueue)
	approveCtx, stopApproving := context.WithCancel(ctx)
	defer stopApproving()
	go load.approve(approveCtx)

	// SIGKILL and a clean stop alternate; the server comes back on the same
	// port and database file.
	restartsDone := load.restartDuring(runs, restarts, gap, func(i int) (string, error) {
		how := []string{"SIGKILL", "clean stop"}[i%2]
		mu.Lock()
		var err error
		if i%2 == 0 {
			err = killDevServer(dbFile)
			_ = srv.Stop() // reaps the killed process
		} else if serr := srv.Stop(); serr != nil && !errors.As(serr, new(*exec.ExitError)) {
			err = serr // an exit status after the interrupt is fine
		}
		mu.Unlock()
		if err != nil {
			return how, err
		}
		time.Sleep(downFor)
		return how, startServer()
	})
	load.start(ctx, t, runs, gap)
	done := <-restartsDone
	for _, r := range done {
		require.NoError(t, r.err)
		t.Logf("%s temporal dev server %s with %d runs in flight: back after %s", r.at.Format("15:04:05.000"), r.how, r.inFlight, r.took.Round(time.Millisecond))
	}
	lastBack := time.Now()
	results := load.wait(t)
	stopApproving()
	t.Logf("the last runs finished %s after the last restart", time.Since(lastBack).Round(100*time.Millisecond))

	store, err := audit.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer store.Close()
	c := checkDemoRuns(ctx, t, store, tenant, results, filepath.Join(dataDir, "refunds.jsonl"))
	t.Logf("temporal chaos: %d runs, %d server restarts (SIGKILL and clean stop alternating, same port and database file); %d/%d completed; refunds: %d executed, %d outcome unknown (%d never reached the ledger); shell outcome unknown %d; calls that ran but were reported unknown %d; ledger %d, 0 twice; %d audit events in %d chains verified, 0 duplicates, 0 missing",
		runs, len(done), c.completed, c.runs, c.refundsExecuted, c.unknown, c.refundNotInLedger, c.shellUnknown, c.resultLost, c.ledger, c.events, c.chains)
}

// killDevServer SIGKILLs the dev server this test started: the one process
// whose command line names the test's own database file.
func killDevServer(dbFile string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("start-dev")) {
			continue
		}
		for _, arg := range bytes.Split(cmdline, []byte{0}) {
			if string(arg) == dbFile {
				return syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	return fmt.Errorf("no dev server process with --db-filename %s", dbFile)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
