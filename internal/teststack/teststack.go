// Package teststack gives end-to-end tests the worker side of the stack:
// a worker running for the length of a test and policy directories built
// from the default bundle. It is separate from testenv because it links
// the worker, which the audit and policy packages' own tests must not.
package teststack

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/policies"
	"github.com/wardenhq/warden/worker"
)

// PolicyDir writes the default policy bundle into a temporary directory
// plus extra data documents (path inside the directory, for example
// "warden/network/data.json" mounted at data.warden.network, → JSON), and
// returns the directory.
func PolicyDir(t testing.TB, data map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, policies.WriteBundle(dir))
	for p, doc := range data {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(doc), 0o644))
	}
	return dir
}

// RunWorker runs worker.Run with cfg until the test ends, failing the test
// if it does not poll within a minute or stops with an error.
func RunWorker(t testing.TB, cfg worker.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, func(*worker.Deps) { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker stopped before polling: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("worker not ready after 60s")
	}
}
