package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fakeCgroupV2 is a directory tree shaped like a delegated cgroup v2: no
// machine here has one with the memory and pids controllers, so the v2
// path's file writes are checked against it. Its mkdir creates the files
// the kernel would; its rmdir removes them.
func fakeCgroupV2(t *testing.T, controllers, subtree string) (*cgroups, string) {
	t.Helper()
	parent := t.TempDir()
	write := func(dir, name, value string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(value), 0o644))
	}
	write(parent, "cgroup.controllers", controllers)
	write(parent, "cgroup.subtree_control", subtree)
	cg := newCgroups(2)
	cg.mkdir = func(dir string) error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for name, value := range map[string]string{
			"cgroup.controllers": controllers, "cgroup.subtree_control": "", "cgroup.procs": "",
			"cpu.max": "max 100000", "cpu.stat": "usage_usec 0\nnr_periods 0\nnr_throttled 0\n",
			"memory.max": "max", "memory.swap.max": "max", "pids.max": "max",
			"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", "pids.events": "max 0\n",
		} {
			write(dir, name, value)
		}
		return nil
	}
	cg.rmdir = os.RemoveAll
	return cg, parent
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(raw)
}

func TestCgroupV2FileWrites(t *testing.T) {
	t.Parallel()
	cg, parent := fakeCgroupV2(t, "cpuset cpu io memory hugetlb pids", "cpu")
	require.NoError(t, cg.setupV2(parent))
	base := filepath.Join(parent, cgroupBase)
	require.Equal(t, []string{base}, cg.bases)
	// Controllers handed down: to the base, and from it to the runs.
	require.Equal(t, "+memory +pids", readFile(t, filepath.Join(parent, "cgroup.subtree_control")))
	require.Equal(t, "+memory +pids +cpu", readFile(t, filepath.Join(base, "cgroup.subtree_control")))
	require.True(t, cg.swap)
	require.True(t, cg.cpu, "the cpu controller is offered: runs get a CPU cap")
	// The proof run's cgroup is gone.
	entries, err := os.ReadDir(base)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, e.IsDir(), "left behind: %s", e.Name())
	}

	rc, err := cg.create(Limits{Memory: 100 << 20, Processes: 32})
	require.NoError(t, err)
	require.Len(t, rc.dirs, 1)
	dir := rc.dirs[0]
	require.Equal(t, base, filepath.Dir(dir))
	require.True(t, strings.HasPrefix(filepath.Base(dir), strconv.Itoa(os.Getpid())+"-"))
	require.Equal(t, "104857600", readFile(t, filepath.Join(dir, "memory.max")))
	require.Equal(t, "0", readFile(t, filepath.Join(dir, "memory.swap.max")))
	require.Equal(t, strconv.Itoa(32+initTasks), readFile(t, filepath.Join(dir, "pids.max")))
	require.Equal(t, "max 100000", readFile(t, filepath.Join(dir, "cpu.max")), "no CPUs: no cap")
	// v2 clones the init into the cgroup: the directory is open for
	// CLONE_INTO_CGROUP, and join writes nothing.
	require.NotNil(t, rc.fd)
	require.NoError(t, rc.join(12345))
	require.Empty(t, readFile(t, filepath.Join(dir, "cgroup.procs")))

	// A process left in the cgroup is killed, the counters are read, the
	// cgroup removed.
	left := exec.Command("sleep", "60")
	require.NoError(t, left.Start())
	waited := make(chan error, 1)
	go func() { waited <- left.Wait() }()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(left.Process.Pid)+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pids.events"), []byte("max 3\n"), 0o644))
	ev, err := rc.close()
	require.NoError(t, err)
	require.Equal(t, cgroupEvents{oomKills: 2, pidsMax: 3, memLimitHits: 7}, ev)
	select {
	case err := <-waited:
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit))
		require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal())
	case <-time.After(5 * time.Second):
		t.Fatal("the process left in the cgroup was not killed")
	}
	require.NoDirExists(t, dir)

	// No memory limit: memory.max stays "max".
	rc, err = cg.create(Limits{Processes: 8})
	require.NoError(t, err)
	require.Equal(t, "max", readFile(t, filepath.Join(rc.dirs[0], "memory.max")))
	require.Equal(t, strconv.Itoa(8+initTasks), readFile(t, filepath.Join(rc.dirs[0], "pids.max")), "the program's 8 and the init's own threads")
	_, err = rc.close()
	require.NoError(t, err)

	// A run whose policy set no memory_bytes gets DefaultMemory (Run
	// applies the defaults before it creates the cgroup).
	rc, err = cg.create(Limits{}.withDefaults())
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(DefaultMemory), readFile(t, filepath.Join(rc.dirs[0], "memory.max")))
	_, err = rc.close()
	require.NoError(t, err)
}

// TestCgroupRemovalRetried: a run cgroup that cannot be removed when its
// run ends is removed by a later run, in the background.
func TestCgroupRemovalRetried(t *testing.T) {
	t.Parallel()
	cg, parent := fakeCgroupV2(t, "memory pids", "")
	require.NoError(t, cg.setupV2(parent))
	var refuse atomic.Bool
	refuse.Store(true)
	cg.rmdir = func(dir string) error {
		if refuse.Load() {
			return unix.EACCES
		}
		return os.RemoveAll(dir)
	}
	rc, err := cg.create(Limits{})
	require.NoError(t, err)
	dir := rc.dirs[0]
	_, err = rc.close()
	require.ErrorIs(t, err, unix.EACCES)
	require.DirExists(t, dir)

	refuse.Store(false)
	next, err := cg.create(Limits{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := os.Stat(dir)
		return errors.Is(err, os.ErrNotExist)
	}, 5*time.Second, 10*time.Millisecond)
	_, err = next.close()
	require.NoError(t, err)
}

func TestCgroupV2KeepsEnabledControllers(t *testing.T) {
	t.Parallel()
	cg, parent := fakeCgroupV2(t, "memory pids", "pids memory")
	require.NoError(t, cg.setupV2(parent))
	require.Equal(t, "pids memory", readFile(t, filepath.Join(parent, "cgroup.subtree_control")))
}

func TestCgroupV2NeedsMemoryAndPids(t *testing.T) {
	t.Parallel()
	// What the unified hierarchy of this host offers.
	cg, parent := fakeCgroupV2(t, "hugetlb", "")
	err := cg.setupV2(parent)
	require.ErrorContains(t, err, "offers controllers [hugetlb], needs memory and pids")
	require.NoDirExists(t, filepath.Join(parent, cgroupBase))
}

func TestCgroupReportString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "v2 delegated at /sys/fs/cgroup/w/warden; CPU per process only (RLIMIT_CPU)", CgroupReport{Mode: CgroupV2, Paths: []string{"/sys/fs/cgroup/w/warden"}}.String())
	require.Equal(t, "v1 at /m/warden /p/warden /c/warden; CPU capped per run", CgroupReport{Mode: CgroupV1, Paths: []string{"/m/warden", "/p/warden", "/c/warden"}, CPU: true}.String())
	require.Equal(t, "none: rlimits only", CgroupReport{Mode: CgroupNone}.String())
}

// TestCgroupV2CloneInto checks the v2 mechanism on the real cgroup2 mount
// of this host, which has no memory or pids controller: the init's clone
// into a cgroup (the SysProcAttr Run sets) and the kill and removal.
func TestCgroupV2CloneInto(t *testing.T) {
	t.Parallel()
	mounts, err := cgroupMounts()
	require.NoError(t, err)
	if mounts.v2 == "" || os.Geteuid() != 0 {
		t.Skip("needs root and a cgroup2 mount")
	}
	own, err := ownCgroups()
	require.NoError(t, err)
	dir := filepath.Join(mounts.v2, own[""], "warden-clone-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup v2 here: %v", err)
	}
	cg := newCgroups(2)
	fd, err := os.Open(dir)
	require.NoError(t, err)
	rc := &runCgroup{cg: cg, dirs: []string{dir}, fd: fd}
	t.Cleanup(func() { rc.close() })

	cmd := exec.Command("sh", "-c", "cat /proc/self/cgroup; sleep 60 & sleep 60; true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	line := make([]byte, 4096)
	n, _ := out.Read(line)
	require.Contains(t, string(line[:n]), "0::"+strings.TrimPrefix(dir, mounts.v2)+"\n")
	require.Eventually(t, func() bool {
		pids, _ := cgroupProcs(dir)
		return len(pids) == 3 // sh and both sleeps
	}, 5*time.Second, 10*time.Millisecond)

	_, err = rc.close()
	require.NoError(t, err)
	require.NoDirExists(t, dir)
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the shell in the cgroup was not killed")
	}
}

// BenchmarkCgroupLifecycle measures what a run's cgroup costs the worker,
// apart from the run: create with limits, join (the v1 move of a process
// into it; v2 clones into it instead) and close (kill, counters, remove).
// A helper process is moved in and back out each time.
//
//	go test -run '^$' -bench CgroupLifecycle -benchtime=200x ./sandbox
func BenchmarkCgroupLifecycle(b *testing.B) {
	cg, rep := detectCgroups(Options{})
	if cg == nil {
		b.Skipf("no usable cgroup here: %v", rep.Notes)
	}
	if cg.version != 1 {
		b.Skip("measures the v1 move")
	}
	helper := exec.Command("sleep", "1000")
	if err := helper.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { helper.Process.Kill(); helper.Wait() }()
	pid := strconv.Itoa(helper.Process.Pid)
	var join, rest time.Duration
	for b.Loop() {
		t0 := time.Now()
		rc, err := cg.create(Limits{Memory: 64 << 20, Processes: 64})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := rc.join(helper.Process.Pid); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		for _, base := range cg.bases {
			// Back to the worker's own cgroup, so close finds the run's empty.
			if err := writeCgroupFile(filepath.Dir(base), "cgroup.procs", pid); err != nil {
				b.Fatal(err)
			}
		}
		t3 := time.Now()
		if _, err := rc.close(); err != nil {
			b.Fatal(err)
		}
		join += t2.Sub(t1)
		rest += t1.Sub(t0) + time.Since(t3)
	}
	b.ReportMetric(float64(join.Nanoseconds())/float64(b.N), "join-ns/op")
	b.ReportMetric(float64(rest.Nanoseconds())/float64(b.N), "create+close-ns/op")
}

// A run that failed at its memory limit without an OOM kill (the init's
// Go runtime could not get a thread, say) is reported as over its memory,
// not as a bare exit; one that reached the limit and still succeeded is not.
func TestNoteLimitsNamesAFailureAtTheMemoryLimit(t *testing.T) {
	lim := Limits{Memory: 256 << 20}
	failed := Result{ExitCode: 2}
	failed.noteLimits(cgroupEvents{memLimitHits: 3}, lim)
	require.True(t, failed.MemoryExceeded)
	require.Contains(t, string(failed.Stderr), "failed at the memory limit 268435456 bytes")

	ok := Result{}
	ok.noteLimits(cgroupEvents{memLimitHits: 3}, lim)
	require.False(t, ok.MemoryExceeded, "page cache reclaimed at the limit is not a failure")

	killed := Result{ExitCode: 137, Signal: "SIGKILL"}
	killed.noteLimits(cgroupEvents{oomKills: 1, memLimitHits: 9}, lim)
	require.True(t, killed.MemoryExceeded)
	require.Contains(t, string(killed.Stderr), "killed: memory limit")
}
