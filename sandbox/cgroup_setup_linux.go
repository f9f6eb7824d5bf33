// Finding and setting up the cgroup layer at New: the cgroup2 and v1
// mounts, the worker's own cgroups, the base cgroups below them (their
// controllers enabled), and the proof that a run's cgroup can be made.

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

	"golang.org/x/sys/unix"
)

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
