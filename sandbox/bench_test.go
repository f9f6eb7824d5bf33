//go:build linux

package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wardenhq/warden/sandbox"
)

// Spawn-to-exit latency of a sandboxed program, in one run so the ratios
// hold on a noisy machine:
//
//	go test -run '^$' -bench 'Run|Bwrap|Exec' -benchtime=200x ./sandbox
//
// BenchmarkRunTrue uses the cgroup layer the host offers (Runner.Cgroup),
// BenchmarkRunTrueNoCgroup none: their ratio is the cost of the cgroup.
//
// BenchmarkExecTrue is the floor (plain os/exec); BenchmarkBwrap* is
// bubblewrap (Debian package bubblewrap) with the isolation of mode
// isolated: all namespaces, a new session, read-only /usr, /etc entries,
// /dev, fresh /proc, tmpfs /tmp, the workspace bound writable, every
// capability dropped, and the same seccomp program. bwrap has no Landlock,
// so isolated mode does strictly more.

func benchRun(b *testing.B, mode string, argv []string) {
	benchRunOpts(b, sandbox.Options{Mode: mode, ProcessAsRoot: true}, argv)
}

func benchRunOpts(b *testing.B, opts sandbox.Options, argv []string) {
	r, err := sandbox.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("cgroup: %s", r.Cgroup())
	dir := b.TempDir()
	ctx := context.Background()
	for b.Loop() {
		res, err := r.Run(ctx, sandbox.Spec{Argv: argv, Dir: dir})
		if err != nil || res.ExitCode != 0 {
			b.Fatal(err, res.ExitCode, string(res.Stderr))
		}
	}
}

func BenchmarkRunTrue(b *testing.B) { benchRun(b, sandbox.ModeIsolated, []string{"/bin/true"}) }

// BenchmarkRunTrueNoCgroup is BenchmarkRunTrue with rlimits only: the
// difference is the cost of a run's cgroup (create, limit, join, kill,
// remove).
func BenchmarkRunTrueNoCgroup(b *testing.B) {
	benchRunOpts(b, sandbox.Options{Cgroups: sandbox.CgroupNone}, []string{"/bin/true"})
}

func BenchmarkRunTrueProcessMode(b *testing.B) {
	benchRun(b, sandbox.ModeProcess, []string{"/bin/true"})
}

func BenchmarkRunTrueProcessModeNoCgroup(b *testing.B) {
	benchRunOpts(b, sandbox.Options{Mode: sandbox.ModeProcess, ProcessAsRoot: true, Cgroups: sandbox.CgroupNone}, []string{"/bin/true"})
}

// BenchmarkRunGoTool runs a small Go program: this test binary, as Go
// tools run (re-executing the sandbox's own binary).
func BenchmarkRunGoTool(b *testing.B) {
	benchRun(b, sandbox.ModeIsolated, []string{sandbox.SelfExe, attackArg, "noop"})
}

// BenchmarkExecTrue is the baseline: /bin/true through plain os/exec.
func BenchmarkExecTrue(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		cmd := exec.Command("/bin/true")
		cmd.Dir = dir
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBwrapTrue(b *testing.B) { benchBwrap(b, "/bin/true") }

func BenchmarkBwrapGoTool(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	benchBwrap(b, self, attackArg, "noop")
}

func benchBwrap(b *testing.B, argv ...string) {
	spawn := bwrapSpawner(b, argv...)
	for b.Loop() {
		if err := spawn(); err != nil {
			b.Fatal(err)
		}
	}
}

// bwrapSpawner returns a function that runs argv once under bubblewrap
// with isolated mode's isolation (see the comment at the top).
func bwrapSpawner(b *testing.B, argv ...string) func() error {
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		b.Skip("bubblewrap is not installed (apt-get install -y bubblewrap)")
	}
	dir := b.TempDir()
	filter := filepath.Join(b.TempDir(), "seccomp.bpf")
	if err := os.WriteFile(filter, sandbox.SeccompProgramForBenchmark(), 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{
		"--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
		"--uid", "0", "--gid", "0", "--hostname", "warden-sandbox",
		"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
		"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
		"--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache", "--ro-bind", "/etc/alternatives", "/etc/alternatives",
		"--ro-bind", "/etc/ssl/certs", "/etc/ssl/certs", "--ro-bind", "/etc/nsswitch.conf", "/etc/nsswitch.conf",
		"--dev", "/dev", "--proc", "/proc", "--size", "67108864", "--tmpfs", "/tmp",
		"--bind", dir, dir, "--chdir", dir,
		"--clearenv", "--setenv", "PATH", sandbox.BasePath, "--setenv", "HOME", dir,
		"--seccomp", "3",
	}
	if len(argv) > 0 && argv[0] != "/bin/true" {
		args = append(args, "--ro-bind", argv[0], argv[0])
	}
	args = append(args, "--")
	args = append(args, argv...)
	return func() error {
		f, err := os.Open(filter)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd := exec.Command(bwrap, args...)
		cmd.ExtraFiles = []*os.File{f}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
}
