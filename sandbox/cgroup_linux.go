package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// detectCgroups finds the cgroups runs can be limited with: a v2 cgroup
// with the memory and pids controllers the worker may delegate, else
// writable v1 memory and pids hierarchies, else none. It proves the
// choice by creating and removing a run's cgroup. The report says what it
// found and, for a mode it could not use, why.
func detectCgroups(opts Options) (*cgroups, CgroupReport) {
	rep := CgroupReport{Mode: CgroupNone}
	if opts.Cgroups == CgroupNone {
		rep.Notes = append(rep.Notes, "cgroups disabled by configuration")
		return nil, rep
	}
	mounts, err := cgroupMounts()
	if err != nil {
		rep.Notes = append(rep.Notes, "read mounts: "+err.Error())
		return nil, rep
	}
	own, err := ownCgroups()
	if err != nil {
		rep.Notes = append(rep.Notes, "read /proc/self/cgroup: "+err.Error())
		return nil, rep
	}
	if opts.Cgroups != CgroupV1 || opts.CgroupParent != "" {
		parent := opts.CgroupParent
		if parent == "" && mounts.v2 != "" {
			parent = filepath.Join(mounts.v2, own[""])
		}
		if parent != "" {
			cg := newCgroups(2)
			err := cg.setupV2(parent)
			if err == nil {
				if !cg.cpu {
					rep.Notes = append(rep.Notes, "v2: the cpu controller is not delegated: CPU bounded per process only (RLIMIT_CPU)")
				}
				return cg, CgroupReport{Mode: CgroupV2, Paths: cg.bases, CPU: cg.cpu, Notes: rep.Notes}
			}
			rep.Notes = append(rep.Notes, "v2: "+err.Error())
		} else {
			rep.Notes = append(rep.Notes, "v2: no cgroup2 mount")
		}
		if opts.Cgroups == CgroupV2 || opts.CgroupParent != "" {
			return nil, rep
		}
	}
	mem, pids := mounts.v1["memory"], mounts.v1["pids"]
	if mem == "" || pids == "" {
		rep.Notes = append(rep.Notes, "v1: no memory and pids hierarchies")
		return nil, rep
	}
	cg := newCgroups(1)
	if err := cg.setupV1(filepath.Join(mem, own["memory"]), filepath.Join(pids, own["pids"])); err != nil {
		rep.Notes = append(rep.Notes, "v1: "+err.Error())
		return nil, rep
	}
	if cpu := mounts.v1["cpu"]; cpu == "" {
		rep.Notes = append(rep.Notes, "v1: no cpu hierarchy: CPU bounded per process only (RLIMIT_CPU)")
	} else if err := cg.setupV1CPU(filepath.Join(cpu, own["cpu"])); err != nil {
		rep.Notes = append(rep.Notes, "v1 cpu: "+err.Error()+": CPU bounded per process only (RLIMIT_CPU)")
	}
	return cg, CgroupReport{Mode: CgroupV1, Paths: cg.bases, CPU: cg.cpu, Notes: rep.Notes}
}

// setupV2 prepares parent/warden as the base of the runs' cgroups: parent
// must offer the memory and pids controllers, and both are enabled for
// its subtree and the base's.
func (cg *cgroups) setupV2(parent string) error {
	cg.bases = []string{filepath.Join(parent, cgroupBase)}
	cpuParent, err := cg.enableV2(parent)
	if err != nil {
		return err
	}
	if err := cg.mkdir(cg.bases[0]); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", cg.bases[0], err)
	}
	cpuBase, err := cg.enableV2(cg.bases[0])
	if err != nil {
		return err
	}
	cg.cpu = cpuParent && cpuBase
	_, err = os.Stat(filepath.Join(cg.bases[0], "memory.swap.max"))
	cg.swap = err == nil
	err = cg.prove()
	if err != nil && cg.cpu {
		cg.cpu = false
		err = cg.prove()
	}
	return err
}

// enableV2 enables the memory and pids controllers for dir's children,
// and the cpu controller when dir offers it (a host that does not
// delegate it still gets memory and pids limits); cpu says whether it is
// enabled.
func (cg *cgroups) enableV2(dir string) (cpu bool, err error) {
	raw, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return false, err
	}
	have := strings.Fields(string(raw))
	var missing []string
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return false, fmt.Errorf("%s offers controllers [%s], needs memory and pids (delegate them to the worker's cgroup)",
			dir, strings.Join(have, " "))
	}
	want := []string{"memory", "pids"}
	if slices.Contains(have, "cpu") {
		want = append(want, "cpu")
	}
	raw, err = os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return false, err
	}
	enabled := strings.Fields(string(raw))
	var add []string
	for _, c := range want {
		if !slices.Contains(enabled, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return len(want) == 3, nil
	}
	if err := writeCgroupFile(dir, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
		if errors.Is(err, unix.EBUSY) {
			// The no-internal-processes rule: a non-root cgroup with
			// processes cannot hand controllers to children.
			return false, fmt.Errorf("%w (the cgroup holds processes, the worker's own among them: run the worker in a child cgroup and name this one as the parent)", err)
		}
		return false, err
	}
	return len(want) == 3, nil
}

// setupV1CPU adds cpu/.../warden as the third base, proved by creating
// and removing a run's cgroup with a quota.
func (cg *cgroups) setupV1CPU(cpu string) error {
	base := filepath.Join(cpu, cgroupBase)
	if err := cg.mkdir(base); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", base, err)
	}
	cg.bases = append(cg.bases, base)
	cg.cpu = true
	if err := cg.prove(); err != nil {
		cg.bases = cg.bases[:2]
		cg.cpu = false
		return err
	}
	return nil
}

// setupV1 prepares memory/.../warden and pids/.../warden as the bases.
func (cg *cgroups) setupV1(memory, pids string) error {
	cg.bases = []string{filepath.Join(memory, cgroupBase), filepath.Join(pids, cgroupBase)}
	for _, b := range cg.bases {
		if err := cg.mkdir(b); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create %s: %w", b, err)
		}
	}
	_, err := os.Stat(filepath.Join(cg.bases[0], "memory.memsw.limit_in_bytes"))
	cg.swap = err == nil
	return cg.prove()
}

func newCgroups(version int) *cgroups {
	return &cgroups{
		version: version,
		mkdir:   func(p string) error { return os.Mkdir(p, 0o755) },
		rmdir:   unix.Rmdir,
	}
}

// prove removes the cgroups dead workers left behind, then creates and
// removes one run's cgroup.
func (cg *cgroups) prove() error {
	cg.sweep()
	rc, err := cg.create(Limits{}.withDefaults())
	if err != nil {
		return err
	}
	if _, err := rc.close(); err != nil {
		return err
	}
	return nil
}

// sweep removes the run cgroups of workers that are no longer running.
func (cg *cgroups) sweep() {
	for _, b := range cg.bases {
		entries, _ := os.ReadDir(b)
		for _, e := range entries {
			owner, _, ok := strings.Cut(e.Name(), "-")
			pid, err := strconv.Atoi(owner)
			if !ok || err != nil || !e.IsDir() || pid == os.Getpid() {
				continue
			}
			if unix.Kill(pid, 0) == unix.ESRCH {
				rc := &runCgroup{cg: cg, dirs: []string{filepath.Join(b, e.Name())}}
				rc.close()
			}
		}
	}
}

// create makes a run's cgroup with lim's memory and process limits.
// initTasks is the room pids.max leaves for the init's own threads on top
// of Limits.Processes: the init (a Go runtime limited to one P) runs a
// handful, and a program that filled pids.max would otherwise stop it from
// starting the thread it needs to reap, catch a signal or report.
const initTasks = 16

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
		writes = append(writes, [3]string{rc.dirs[0], "memory.max", memory}, [3]string{rc.dirs[0], "pids.max", pids})
		if cg.swap {
			// No swap: memory.max is the whole of it.
			writes = append(writes, [3]string{rc.dirs[0], "memory.swap.max", "0"})
		}
	} else {
		if memory == "max" {
			memory = "-1"
		}
		writes = append(writes, [3]string{rc.dirs[0], "memory.limit_in_bytes", memory})
		if cg.swap {
			// memory+swap equal to memory: no swap. Written after
			// limit_in_bytes, which it may not undercut.
			writes = append(writes, [3]string{rc.dirs[0], "memory.memsw.limit_in_bytes", memory})
		}
		writes = append(writes, [3]string{rc.dirs[1], "pids.max", pids})
	}
	if cg.cpu {
		quota, period := cpuQuota(lim.CPUs)
		if cg.version == 2 {
			writes = append(writes, [3]string{rc.dirs[0], "cpu.max", quota + " " + period})
		} else {
			if quota == "max" {
				quota = "-1" // v1's "no cap"
			}
			writes = append(writes, [3]string{rc.dirs[2], "cpu.cfs_period_us", period}, [3]string{rc.dirs[2], "cpu.cfs_quota_us", quota})
		}
	}
	for _, w := range writes {
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

// mountedCgroups are the mount points of the cgroup2 hierarchy and of
// the v1 hierarchies, by controller. The root of each mount is its
// cgroup namespace's root, which /proc/self/cgroup paths are relative to.
type mountedCgroups struct {
	v2 string
	v1 map[string]string
}

func cgroupMounts() (mountedCgroups, error) {
	m := mountedCgroups{v1: map[string]string{}}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return m, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(s.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 || fields[3] != "/" {
			continue
		}
		switch tail[0] {
		case "cgroup2":
			if m.v2 == "" {
				m.v2 = fields[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(tail[2], ",") {
				if opt == "memory" || opt == "pids" || opt == "cpu" {
					if _, dup := m.v1[opt]; !dup {
						m.v1[opt] = fields[4]
					}
				}
			}
		}
	}
	return m, s.Err()
}

// ownCgroups reads the worker's cgroup in each hierarchy: "" is the v2
// one, the others are keyed by v1 controller.
func ownCgroups() (map[string]string, error) {
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own, nil
}
