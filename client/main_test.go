package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/tools"
	"github.com/wardenhq/warden/worker"
)

// temporalClient is the Temporal client the examples use, connected to a
// dev server with a Warden worker (worker.Run, the default task queue and
// the scripted model) that TestMain starts. A product backend dials its own
// with client.Dial.
var temporalClient client.Client

func TestMain(m *testing.M) {
	tools.Reexec() // the sandbox re-executes this test binary to run tools
	os.Exit(runWithWorker(m))
}

// runWithWorker runs the tests beside a dev server and a worker. It fails,
// never skips, when they cannot start.
func runWithWorker(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{Logger: testenv.QuietLogger(), Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		fmt.Fprintln(os.Stderr, "the examples run against a Temporal dev server:", err)
		return 1
	}
	defer func() { _ = srv.Stop() }()
	dir, err := os.MkdirTemp("", "warden-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		DataDir:         dir,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	wctx, stop := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- worker.Run(wctx, cfg, func(*worker.Deps) { close(ready) }) }()
	defer func() {
		stop()
		<-done
	}()
	select {
	case <-ready:
	case err := <-done:
		fmt.Fprintln(os.Stderr, "worker stopped before polling:", err)
		return 1
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "worker not ready in time")
		return 1
	}
	temporalClient = srv.Client()
	return m.Run()
}
