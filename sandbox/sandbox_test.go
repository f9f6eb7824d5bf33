//go:build linux

package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wardenhq/warden/sandbox"
)

// TestMain makes the test binary the sandbox init: Runner re-executes it.
func TestMain(m *testing.M) {
	sandbox.Init()
	if len(os.Args) > 2 && os.Args[1] == attackArg {
		os.Exit(attackMain(os.Args[2], os.Args[3:]))
	}
	// The base cgroups this run creates are removed afterwards (rmdir
	// fails while a run of another process holds one).
	var created []string
	for _, b := range sandbox.CgroupBases() {
		if _, err := os.Stat(b); err != nil {
			created = append(created, b)
		}
	}
	code := m.Run()
	for _, b := range created {
		unix.Rmdir(b)
	}
	if initBinary.path != "" {
		os.RemoveAll(filepath.Dir(initBinary.path))
	}
	os.Exit(code)
}

func newRunner(t testing.TB) *sandbox.Runner {
	t.Helper()
	r, err := sandbox.New(sandbox.Options{})
	require.NoError(t, err)
	return r
}

func run(t *testing.T, spec sandbox.Spec) sandbox.Result {
	t.Helper()
	if spec.Dir == "" {
		spec.Dir = t.TempDir()
	}
	res, err := newRunner(t).Run(context.Background(), spec)
	require.NoError(t, err)
	return res
}

func TestCgroupModeChoice(t *testing.T) {
	t.Parallel()
	_, err := sandbox.New(sandbox.Options{Cgroups: "v3"})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorContains(t, err, `unknown cgroup mode "v3"`)

	r, err := sandbox.New(sandbox.Options{Cgroups: sandbox.CgroupNone})
	require.NoError(t, err)
	require.Equal(t, sandbox.CgroupReport{Mode: sandbox.CgroupNone, Notes: []string{"cgroups disabled by configuration"}}, r.Cgroup())

	// An explicit mode the host cannot give is an error, never a downgrade.
	best := newRunner(t).Cgroup().Mode
	for _, mode := range []string{sandbox.CgroupV2, sandbox.CgroupV1} {
		r, err := sandbox.New(sandbox.Options{Cgroups: mode})
		if err != nil {
			require.NotEqual(t, best, mode)
			require.ErrorContains(t, err, "cgroup "+mode+" is not usable on this host")
			continue
		}
		require.Equal(t, mode, r.Cgroup().Mode)
	}
}

func TestCgroupParentMustBeUsable(t *testing.T) {
	t.Parallel()
	// A directory that is no cgroup: a named parent is never downgraded.
	parent := t.TempDir()
	_, err := sandbox.New(sandbox.Options{CgroupParent: parent})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorContains(t, err, "cgroup parent "+parent+" is not usable")
	require.ErrorContains(t, err, "cgroup.controllers")
}

func TestNewRejectsUnknownMode(t *testing.T) {
	t.Parallel()
	_, err := sandbox.New(sandbox.Options{Mode: "gvisor"})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorContains(t, err, `unknown mode "gvisor"`)

	r := newRunner(t)
	require.Equal(t, sandbox.ModeIsolated, r.Mode())
	p, err := sandbox.New(sandbox.Options{Mode: sandbox.ModeProcess, ProcessAsRoot: os.Geteuid() == 0})
	require.NoError(t, err)
	require.Equal(t, sandbox.ModeProcess, p.Mode())
}

// Class: process mode. As root it would run every tool as host root with
// every capability: refused unless accepted explicitly, and the error
// says what to do.
func TestProcessModeAsRootNeedsConsent(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("the worker is not root here: process mode runs tools as its own unprivileged uid")
	}
	_, err := sandbox.New(sandbox.Options{Mode: sandbox.ModeProcess})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorContains(t, err, "process mode as root")
	require.ErrorContains(t, err, "--sandbox-process-as-root")
	r, err := sandbox.New(sandbox.Options{Mode: sandbox.ModeProcess, ProcessAsRoot: true})
	require.NoError(t, err)
	require.Equal(t, sandbox.ModeProcess, r.Mode())
}

func TestCheckReportsThisHost(t *testing.T) {
	t.Parallel()
	rep := sandbox.Check()
	require.True(t, rep.UserNamespaces, rep.UserNamespacesError)
	require.GreaterOrEqual(t, rep.LandlockABI, sandbox.MinLandlockABI)
	require.True(t, rep.Seccomp)
	require.Equal(t, sandbox.ModeIsolated, rep.Mode)
	require.Empty(t, rep.Problems)
}

// TestProcessMode runs the degraded mode's guarantees: limits, scrubbed
// environment, deadline of the process group.
func TestProcessMode(t *testing.T) {
	t.Setenv("WARDEN_TEST_SECRET", "hunter2")
	r, err := sandbox.New(sandbox.Options{Mode: sandbox.ModeProcess, ProcessAsRoot: true})
	require.NoError(t, err)
	dir := t.TempDir()
	res, err := r.Run(context.Background(), sandbox.Spec{Argv: []string{"sh", "-c", "env; ulimit -n; pwd"}, Dir: dir, Limits: sandbox.Limits{OpenFiles: 19}})
	require.NoError(t, err)
	require.NotContains(t, string(res.Stdout), "hunter2")
	require.Contains(t, string(res.Stdout), "19\n")
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	require.Contains(t, string(res.Stdout), real+"\n")

	res, err = r.Run(context.Background(), sandbox.Spec{
		Argv: []string{"sh", "-c", "sleep 100 & echo $! > child.pid; sleep 100"}, Dir: dir,
		Limits: sandbox.Limits{Timeout: 500 * time.Millisecond},
	})
	require.NoError(t, err)
	require.True(t, res.TimedOut)
	raw, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	require.NoError(t, err)
	requireGone(t, pid)
}

func TestNewFailsClosedWhenSelfIsNotAnInit(t *testing.T) {
	t.Parallel()
	// /bin/true ignores the hidden argument and never acknowledges.
	_, err := sandbox.New(sandbox.Options{SelfPath: "/bin/true"})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorContains(t, err, "did not act as the sandbox init")
}

func TestEchoRoundTrip(t *testing.T) {
	t.Parallel()
	res := run(t, sandbox.Spec{Argv: []string{"echo", "hello", "sandbox"}})
	require.Equal(t, 0, res.ExitCode)
	require.Equal(t, "hello sandbox\n", string(res.Stdout))
	require.Empty(t, res.Stderr)
	require.False(t, res.TimedOut)
	require.Empty(t, res.Signal)
	require.Positive(t, res.Duration)
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 1, 3, 42, 255} {
		res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", fmt.Sprintf("echo oops >&2; exit %d", code)}})
		require.Equal(t, code, res.ExitCode)
		require.Equal(t, "oops\n", string(res.Stderr))
	}
	res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", "kill -TERM $$"}})
	require.Equal(t, "SIGTERM", res.Signal)
	require.Equal(t, 128+int(unix.SIGTERM), res.ExitCode)
}

func TestEnvIsScrubbed(t *testing.T) {
	// Not parallel: sets an environment variable of the test process.
	t.Setenv("WARDEN_TEST_SECRET", "hunter2")
	dir := t.TempDir()
	res := run(t, sandbox.Spec{
		Argv: []string{"env"},
		Dir:  dir,
		Env:  []string{"EXTRA=1", "LANG=C"},
	})
	require.Equal(t, 0, res.ExitCode)
	env := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	slices.Sort(env)
	require.Equal(t, []string{
		"EXTRA=1",
		"HOME=" + dir,
		"LANG=C",
		"PATH=" + sandbox.BasePath,
		"TMPDIR=/tmp",
	}, env)
	require.NotContains(t, string(res.Stdout), "hunter2")
}

func TestBadEnvEntryIsRefused(t *testing.T) {
	t.Parallel()
	_, err := newRunner(t).Run(context.Background(), sandbox.Spec{Argv: []string{"true"}, Dir: t.TempDir(), Env: []string{"NOEQUALS"}})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorContains(t, err, `"NOEQUALS" is not KEY=VALUE`)
}

func TestCwdIsWorkspace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := run(t, sandbox.Spec{Argv: []string{"pwd"}, Dir: dir})
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	require.Equal(t, real+"\n", string(res.Stdout))
}

func TestMissingWorkspaceIsAnError(t *testing.T) {
	t.Parallel()
	_, err := newRunner(t).Run(context.Background(), sandbox.Spec{Argv: []string{"true"}, Dir: filepath.Join(t.TempDir(), "nope")})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	_, err = newRunner(t).Run(context.Background(), sandbox.Spec{Dir: t.TempDir()})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
}

func TestTimeoutKillsTheProcessTree(t *testing.T) {
	t.Parallel()
	m := marker()
	start := time.Now()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "sleep " + m + " & sleep " + m},
		Limits: sandbox.Limits{Timeout: time.Second},
	})
	elapsed := time.Since(start)
	require.True(t, res.TimedOut)
	require.Equal(t, "SIGKILL", res.Signal)
	require.NotZero(t, res.ExitCode)
	require.Less(t, elapsed, 5*time.Second)
	requireNoProcessWith(t, m)
}

func TestBackgroundChildDoesNotOutliveTheRun(t *testing.T) {
	t.Parallel()
	m := marker()
	start := time.Now()
	// The shell exits at once; its background child keeps stdout open.
	res := run(t, sandbox.Spec{
		Argv: []string{"sh", "-c", "sleep " + m + " & echo started"},
	})
	require.Less(t, time.Since(start), 5*time.Second)
	require.False(t, res.TimedOut)
	require.Equal(t, 0, res.ExitCode)
	require.Equal(t, "started\n", string(res.Stdout))
	requireNoProcessWith(t, m)
}

// requireGone waits until pid no longer exists or is a zombie awaiting its
// reaper (either way it is dead).
func requireGone(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return true
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// Format: pid (comm) state ...
		_, rest, _ := strings.Cut(string(stat), ") ")
		return strings.HasPrefix(rest, "Z")
	}, 2*time.Second, 10*time.Millisecond, "process %d survived the sandbox run", pid)
}

func TestCallerCancellationIsAnError(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res, err := r.Run(ctx, sandbox.Spec{Argv: []string{"sleep", "100"}, Dir: t.TempDir()})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, res.TimedOut)
	require.Equal(t, "SIGKILL", res.Signal)
}

func TestOutputCap(t *testing.T) {
	t.Parallel()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "yes | head -c 200000; yes e | head -c 5000 >&2"},
		Limits: sandbox.Limits{MaxOutputBytes: 1000},
	})
	require.Equal(t, 0, res.ExitCode)
	require.Len(t, res.Stdout, 1000)
	require.True(t, res.StdoutTruncated)
	require.Len(t, res.Stderr, 1000)
	require.True(t, res.StderrTruncated)

	res = run(t, sandbox.Spec{Argv: []string{"printf", "12345"}, Limits: sandbox.Limits{MaxOutputBytes: 5}})
	require.Equal(t, "12345", string(res.Stdout))
	require.False(t, res.StdoutTruncated)
}

func TestFileSizeLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "head -c 10M /dev/zero > f"},
		Dir:    dir,
		Limits: sandbox.Limits{FileSize: 1 << 20},
	})
	require.NotEqual(t, 0, res.ExitCode)
	fi, err := os.Stat(filepath.Join(hostView(t, dir), "f"))
	require.NoError(t, err)
	require.LessOrEqual(t, fi.Size(), int64(1<<20))
}

func TestCPULimit(t *testing.T) {
	t.Parallel()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "while :; do :; done"},
		Limits: sandbox.Limits{CPUSeconds: 1, Timeout: 20 * time.Second},
	})
	require.False(t, res.TimedOut)
	require.Contains(t, []string{"SIGXCPU", "SIGKILL"}, res.Signal)
	require.Less(t, res.Duration, 15*time.Second)
}

func TestAddressSpaceLimit(t *testing.T) {
	t.Parallel()
	// head cannot allocate a 512 MiB buffer under a 64 MiB RLIMIT_AS.
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "head -c 1 /dev/zero | od -An -w536870912 >/dev/null"},
		Limits: sandbox.Limits{AddressSpace: 64 << 20},
	})
	require.NotEqual(t, 0, res.ExitCode)
	require.Contains(t, string(res.Stderr), "memory exhausted")
}

func TestOpenFilesLimit(t *testing.T) {
	t.Parallel()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "ulimit -n"},
		Limits: sandbox.Limits{OpenFiles: 17},
	})
	require.Equal(t, "17\n", string(res.Stdout))
	res = run(t, sandbox.Spec{Argv: []string{"sh", "-c", "ulimit -c"}})
	require.Equal(t, "0\n", string(res.Stdout))
}

func TestStdin(t *testing.T) {
	t.Parallel()
	res := run(t, sandbox.Spec{Argv: []string{"tr", "a-z", "A-Z"}, Stdin: []byte("shout\n")})
	require.Equal(t, "SHOUT\n", string(res.Stdout))

	big := strings.Repeat("x", 1<<20)
	res = run(t, sandbox.Spec{Argv: []string{"wc", "-c"}, Stdin: []byte(big)})
	require.Equal(t, strconv.Itoa(len(big)), strings.TrimSpace(string(res.Stdout)))

	// No Stdin: /dev/null.
	res = run(t, sandbox.Spec{Argv: []string{"wc", "-c"}})
	require.Equal(t, "0", strings.TrimSpace(string(res.Stdout)))

	// A program that ignores a large stdin does not hang the run.
	res = run(t, sandbox.Spec{Argv: []string{"true"}, Stdin: []byte(big)})
	require.Equal(t, 0, res.ExitCode)
}

func TestMissingProgramIsAResult(t *testing.T) {
	t.Parallel()
	res := run(t, sandbox.Spec{Argv: []string{"no-such-program-warden"}})
	require.Equal(t, 127, res.ExitCode)
	require.Contains(t, string(res.Stderr), `"no-such-program-warden": executable file not found in PATH`)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "script"), []byte("#!/bin/sh\necho hi\n"), 0o644))
	res = run(t, sandbox.Spec{Argv: []string{"./script"}, Dir: dir})
	require.Equal(t, 126, res.ExitCode)
	require.Contains(t, string(res.Stderr), "permission denied")

	res = run(t, sandbox.Spec{Argv: []string{"./absent"}})
	require.Equal(t, 127, res.ExitCode)
}

func TestNoInheritedDescriptors(t *testing.T) {
	// Not parallel: the leaked descriptor would reach other tests' children.
	// dup returns a descriptor without close-on-exec, as a worker might
	// inherit from its own parent.
	fd, err := unix.Dup(int(os.Stderr.Fd()))
	require.NoError(t, err)
	defer unix.Close(fd)

	res := run(t, sandbox.Spec{Argv: []string{"ls", "/proc/self/fd"}})
	require.Equal(t, 0, res.ExitCode, "stderr: %s", res.Stderr)
	// 0, 1, 2 and the directory ls itself opened.
	require.Equal(t, []string{"0", "1", "2", "3"}, strings.Fields(string(res.Stdout)))
}

func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			res, err := r.Run(context.Background(), sandbox.Spec{Argv: []string{"echo", strconv.Itoa(i)}, Dir: t.TempDir()})
			if err == nil && string(res.Stdout) != strconv.Itoa(i)+"\n" {
				err = fmt.Errorf("run %d: got %q", i, res.Stdout)
			}
			errs <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}

func ExampleRunner_Run() {
	r, err := sandbox.New(sandbox.Options{})
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "workspace")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	res, err := r.Run(context.Background(), sandbox.Spec{
		Argv:   []string{"sh", "-c", "echo hello from $(basename $HOME); exit 3"},
		Dir:    dir,
		Limits: sandbox.Limits{Timeout: 5 * time.Second, CPUSeconds: 5, FileSize: 1 << 20},
	})
	if err != nil {
		panic(err) // the sandbox failed: fail closed
	}
	fmt.Printf("exit %d: %s", res.ExitCode, strings.ReplaceAll(string(res.Stdout), filepath.Base(dir), "<workspace>"))
	// Output: exit 3: hello from <workspace>
}
