//go:build linux

package sandbox_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/sandbox"
)

var initBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// dedicatedInit builds ./cmd/warden-sandbox-init once per test binary.
func dedicatedInit(tb testing.TB) string {
	tb.Helper()
	initBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "warden-sandbox-init-")
		if err != nil {
			initBinary.err = err
			return
		}
		initBinary.path = filepath.Join(dir, "warden-sandbox-init")
		cmd := exec.Command("go", "build", "-o", initBinary.path, "./cmd/warden-sandbox-init")
		initBinary.out, initBinary.err = cmd.CombinedOutput()
	})
	if initBinary.err != nil {
		tb.Fatalf("build the dedicated init: %v\n%s", initBinary.err, initBinary.out)
	}
	return initBinary.path
}

// TestDedicatedInit runs a program and a Go tool (this test binary, handed
// over as the worker's executable) through the small init binary, in both
// modes.
func TestDedicatedInit(t *testing.T) {
	t.Parallel()
	path := dedicatedInit(t)
	for _, mode := range []string{sandbox.ModeIsolated, sandbox.ModeProcess} {
		r, err := sandbox.New(sandbox.Options{Mode: mode, SelfPath: path, ProcessAsRoot: true})
		require.NoError(t, err, mode)
		res, err := r.Run(context.Background(), sandbox.Spec{Argv: []string{"sh", "-c", "echo hi; cat /proc/1/cmdline"}, Dir: t.TempDir()})
		require.NoError(t, err, mode)
		require.Equal(t, 0, res.ExitCode, "%s: %s", mode, res.Stderr)
		require.Contains(t, string(res.Stdout), "hi\n")
		if mode == sandbox.ModeIsolated {
			require.Contains(t, string(res.Stdout), "warden-sandbox", "PID 1 is the init")
		}
		res, err = r.Run(context.Background(), sandbox.Spec{Argv: []string{sandbox.SelfExe, attackArg, "tiocsti"}, Dir: t.TempDir()})
		require.NoError(t, err, mode)
		require.Equal(t, 0, res.ExitCode, "%s: %s", mode, res.Stderr)
		require.Contains(t, string(res.Stdout), "TIOCSTI on fd 0", "the Go tool ran: %s", res.Stderr)
		if mode == sandbox.ModeIsolated {
			requireContained(t, res)
		}
	}
	// Started by hand, the init refuses to do anything.
	out, err := exec.Command(path).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "does nothing on its own")
}

func BenchmarkRunTrueDedicatedInit(b *testing.B) {
	benchRunWith(b, dedicatedInit(b), []string{"/bin/true"})
}

func BenchmarkRunGoToolDedicatedInit(b *testing.B) {
	benchRunWith(b, dedicatedInit(b), []string{sandbox.SelfExe, attackArg, "noop"})
}

// BenchmarkRunTrueDedicatedInitNoCgroup is the production init with
// rlimits only, against BenchmarkRunTrueDedicatedInit with the host's
// cgroup layer.
func BenchmarkRunTrueDedicatedInitNoCgroup(b *testing.B) {
	benchRunOpts(b, sandbox.Options{SelfPath: dedicatedInit(b), Cgroups: sandbox.CgroupNone}, []string{"/bin/true"})
}

func benchRunWith(b *testing.B, init string, argv []string) {
	benchRunOpts(b, sandbox.Options{SelfPath: init}, argv)
}

// BenchmarkRunTrueWorkerInit measures the init a worker binary would be
// when WARDEN_BENCH_WORKER names it (go build -o bin/warden ./cmd/warden):
// every run then pays that binary's package initialization.
func BenchmarkRunTrueWorkerInit(b *testing.B) {
	path := os.Getenv("WARDEN_BENCH_WORKER")
	if path == "" {
		b.Skip("set WARDEN_BENCH_WORKER to a worker binary")
	}
	benchRunWith(b, path, []string{"/bin/true"})
}
