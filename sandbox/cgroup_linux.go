package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Each run gets a fresh cgroup (two on cgroup v1: memory and pids) under a
// base cgroup named cgroupBase, created below the worker's own cgroup of
// each hierarchy, so a limit the host puts on the worker also bounds its
// sandboxes. A run's cgroup is named "<worker pid>-<sequence>": a worker
// that starts removes what a dead worker left behind, and never touches
// the cgroups of a live one.
const cgroupBase = "warden"

// cgroupSeq numbers the run cgroups of this process, across Runners.
var cgroupSeq atomic.Uint64

// cgroupWait bounds how long the cleanup waits for a killed run's
// processes to leave its cgroup before it gives up on removing it (it is
// retried at the next run).
const cgroupWait = 2 * time.Second

// cgroups is the worker-side cgroup layer: the base cgroups and how to
// make a run's cgroup below them.
type cgroups struct {
	// version is 2 or 1.
	version int
	// bases are the v2 base cgroup, or the v1 memory, pids (and cpu)
	// base cgroups.
	bases []string
	// swap is set when the memory controller accounts swap
	// (memory.swap.max on v2, memory.memsw.limit_in_bytes on v1).
	swap bool
	// cpu is set when runs get a CPU bandwidth limit: the v2 cpu
	// controller is enabled for the base, or the v1 cpu hierarchy is
	// writable (then bases[2] is its base). Without it Limits.CPUs is
	// not enforced and CPUSeconds bounds each process only.
	cpu bool
	// mkdir and rmdir create and remove a cgroup; the unit test of the v2
	// path replaces them with a fake cgroupfs that creates the kernel's
	// files.
	mkdir func(string) error
	rmdir func(string) error

	// mu guards stale: run cgroups whose removal failed, retried at the
	// next run so none is left behind. retrying is set while a retry runs
	// (in the background: a process stuck in the kernel must not hold up
	// every run).
	mu       sync.Mutex
	stale    []*runCgroup
	retrying atomic.Bool
}

// runCgroup is the cgroup of one run.
type runCgroup struct {
	cg *cgroups
	// dirs are the v2 cgroup, or the v1 memory, pids (and cpu) cgroups.
	dirs []string
	// fd is the v2 cgroup's directory, for clone(CLONE_INTO_CGROUP); nil
	// on v1, where the worker moves the init in before it runs anything.
	fd *os.File
}

// cgroupEvents are what a run's cgroup counted.
type cgroupEvents struct {
	// oomKills counts processes of the cgroup the OOM killer killed.
	oomKills uint64
	// throttled counts the periods in which the run used its whole CPU
	// quota.
	throttled uint64
	// pidsMax counts forks refused at the process limit.
	pidsMax uint64
	// memLimitHits counts the times the run's memory reached its limit
	// (v2 memory.events max, v1 memory.failcnt), whether or not the OOM
	// killer then killed anything.
	memLimitHits uint64
}

// initTasks is the room pids.max leaves for the init's own threads on top
// of Limits.Processes: the init (a Go runtime limited to one P) runs a
// handful, and a program that filled pids.max would otherwise stop it from
// starting the thread it needs to reap, catch a signal or report.
const initTasks = 16

// create makes a run's cgroup with lim's memory and process limits.
func (cg *cgroups) create(lim Limits) (*runCgroup, error) {
	cg.retryStale()
	name := fmt.Sprintf("%d-%d", os.Getpid(), cgroupSeq.Add(1))
	rc := &runCgroup{cg: cg}
	fail := func(err error) (*runCgroup, error) {
		rc.close()
		return nil, err
	}
	for _, b := range cg.bases {
		dir := filepath.Join(b, name)
		if err := cg.mkdir(dir); err != nil {
			return fail(err)
		}
		rc.dirs = append(rc.dirs, dir)
	}
	for _, w := range cg.limitWrites(rc.dirs, lim) {
		if err := writeCgroupFile(w[0], w[1], w[2]); err != nil {
			return fail(err)
		}
	}
	if cg.version == 2 {
		fd, err := os.Open(rc.dirs[0])
		if err != nil {
			return fail(err)
		}
		rc.fd = fd
	}
	return rc, nil
}

// limitWrites are the control files that set lim on a run's cgroups
// dirs (see runCgroup.dirs), as dir, file, value, in the order they are
// written.
func (cg *cgroups) limitWrites(dirs []string, lim Limits) [][3]string {
	memory := "max"
	if lim.Memory > 0 {
		memory = strconv.FormatUint(lim.Memory, 10)
	}
	pids := "max"
	if lim.Processes > 0 {
		pids = strconv.FormatUint(lim.Processes+initTasks, 10)
	}
	var writes [][3]string // dir, file, value
	if cg.version == 2 {
		writes = append(writes, [3]string{dirs[0], "memory.max", memory}, [3]string{dirs[0], "pids.max", pids})
		if cg.swap {
			// No swap: memory.max is the whole of it.
			writes = append(writes, [3]string{dirs[0], "memory.swap.max", "0"})
		}
	} else {
		if memory == "max" {
			memory = "-1"
		}
		writes = append(writes, [3]string{dirs[0], "memory.limit_in_bytes", memory})
		if cg.swap {
			// memory+swap equal to memory: no swap. Written after
			// limit_in_bytes, which it may not undercut.
			writes = append(writes, [3]string{dirs[0], "memory.memsw.limit_in_bytes", memory})
		}
		writes = append(writes, [3]string{dirs[1], "pids.max", pids})
	}
	if cg.cpu {
		quota, period := cpuQuota(lim.CPUs)
		if cg.version == 2 {
			writes = append(writes, [3]string{dirs[0], "cpu.max", quota + " " + period})
		} else {
			if quota == "max" {
				quota = "-1" // v1's "no cap"
			}
			writes = append(writes, [3]string{dirs[2], "cpu.cfs_period_us", period}, [3]string{dirs[2], "cpu.cfs_quota_us", quota})
		}
	}
	return writes
}

// cpuPeriod is the CPU bandwidth period of a run's cgroup, in µs.
const cpuPeriod = 100_000

// cpuQuota is the quota and period, in µs, for cpus cores ("max" when
// cpus is not positive). The kernel's floor is 1 ms.
func cpuQuota(cpus float64) (quota, period string) {
	period = strconv.Itoa(cpuPeriod)
	if cpus <= 0 {
		return "max", period
	}
	q := max(int64(cpus*cpuPeriod), 1000)
	return strconv.FormatInt(q, 10), period
}

// join moves pid into the run's v1 cgroups. Run calls it after starting
// the init and before sending its config: the init runs nothing of the
// program's before it reads the config, so no fork escapes the limits.
func (rc *runCgroup) join(pid int) error {
	if rc.fd != nil {
		return nil // v2: the init was cloned into the cgroup
	}
	for _, d := range rc.dirs {
		if err := writeCgroupFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// close kills whatever is left in the run's cgroups, reads their event
// counters and removes them. A cgroup that cannot be removed yet is
// retried at the next run.
func (rc *runCgroup) close() (cgroupEvents, error) {
	if rc.fd != nil {
		rc.fd.Close()
		rc.fd = nil
	}
	var ev cgroupEvents
	var errs []error
	for _, d := range rc.dirs {
		if err := killCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	ev.read(rc.cg.version, rc.dirs)
	var left []string
	for _, d := range rc.dirs {
		if err := rc.cg.remove(d); err != nil {
			errs = append(errs, err)
			left = append(left, d)
		}
	}
	if len(left) > 0 {
		rc.dirs = left
		rc.cg.mu.Lock()
		rc.cg.stale = append(rc.cg.stale, rc)
		rc.cg.mu.Unlock()
	}
	return ev, errors.Join(errs...)
}

func (cg *cgroups) retryStale() {
	cg.mu.Lock()
	stale := cg.stale
	cg.stale = nil
	cg.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	if !cg.retrying.CompareAndSwap(false, true) {
		cg.mu.Lock()
		cg.stale = append(cg.stale, stale...)
		cg.mu.Unlock()
		return
	}
	go func() {
		defer cg.retrying.Store(false)
		for _, rc := range stale {
			rc.close() // one still not removable goes back on the list
		}
	}()
}

// remove removes a cgroup, waiting for exiting processes to leave it.
func (cg *cgroups) remove(dir string) error {
	deadline := time.Now().Add(cgroupWait)
	for {
		err := cg.rmdir(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killCgroup kills every process in dir and waits until it is empty:
// cgroup.kill where the kernel has it (v2, Linux 5.14), then SIGKILL to
// each process still listed, until none that exists is.
func killCgroup(dir string) error {
	writeCgroupFile(dir, "cgroup.kill", "1") // absent on v1 and old kernels
	deadline := time.Now().Add(cgroupWait)
	for {
		pids, err := cgroupProcs(dir)
		if err != nil {
			return err
		}
		alive := pids[:0]
		for _, pid := range pids {
			if unix.Kill(pid, unix.SIGKILL) != unix.ESRCH {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still holds processes %v", dir, alive)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func cgroupProcs(dir string) ([]int, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(raw)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// read fills ev from the counters of a run's cgroups: memory.events and
// pids.events on v2; memory.oom_control (oom_kill, Linux 4.13) and
// pids.events on v1.
func (ev *cgroupEvents) read(version int, dirs []string) {
	if len(dirs) == 0 {
		return
	}
	if version == 2 {
		ev.oomKills = cgroupCounter(filepath.Join(dirs[0], "memory.events"), "oom_kill")
		ev.memLimitHits = cgroupCounter(filepath.Join(dirs[0], "memory.events"), "max")
		ev.pidsMax = cgroupCounter(filepath.Join(dirs[0], "pids.events"), "max")
		ev.throttled = cgroupCounter(filepath.Join(dirs[0], "cpu.stat"), "nr_throttled")
		return
	}
	ev.oomKills = cgroupCounter(filepath.Join(dirs[0], "memory.oom_control"), "oom_kill")
	if raw, err := os.ReadFile(filepath.Join(dirs[0], "memory.failcnt")); err == nil {
		ev.memLimitHits, _ = strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	}
	if len(dirs) > 1 {
		ev.pidsMax = cgroupCounter(filepath.Join(dirs[1], "pids.events"), "max")
	}
	if len(dirs) > 2 {
		ev.throttled = cgroupCounter(filepath.Join(dirs[2], "cpu.stat"), "nr_throttled")
	}
}

// cgroupCounter reads the "key value" line key of a flat-keyed cgroup file.
func cgroupCounter(path, key string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// writeCgroupFile writes value to dir/name. Control files exist from the
// cgroup's creation: it never creates one.
func writeCgroupFile(dir, name, value string) error {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write %q: %w", value, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}
