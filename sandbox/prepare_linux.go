// The preparing stage of a run: its cgroup, the descriptors the init
// receives (named in the config), the rlimits and the encoded config.

package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// rlimitsFor lists the rlimits the init applies: each non-zero limit, and
// never a core dump. nproc asks for RLIMIT_NPROC: in isolated mode without
// a cgroup (whose pids.max is the better limit: it counts every task of
// the run, whatever its uid).
func rlimitsFor(l Limits, nproc bool) []rlimit {
	rl := []rlimit{{Name: "RLIMIT_CORE", Resource: unix.RLIMIT_CORE}}
	if l.CPUSeconds > 0 {
		// The soft limit sends SIGXCPU; the hard limit a second later SIGKILL,
		// for programs that catch SIGXCPU.
		rl = append(rl, rlimit{Name: "RLIMIT_CPU", Resource: unix.RLIMIT_CPU, Cur: l.CPUSeconds, Max: l.CPUSeconds + 1})
	}
	if l.AddressSpace > 0 {
		rl = append(rl, rlimit{Name: "RLIMIT_AS", Resource: unix.RLIMIT_AS, Cur: l.AddressSpace, Max: l.AddressSpace})
	}
	if l.FileSize > 0 {
		rl = append(rl, rlimit{Name: "RLIMIT_FSIZE", Resource: unix.RLIMIT_FSIZE, Cur: l.FileSize, Max: l.FileSize})
	}
	if l.OpenFiles > 0 {
		rl = append(rl, rlimit{Name: "RLIMIT_NOFILE", Resource: unix.RLIMIT_NOFILE, Cur: l.OpenFiles, Max: l.OpenFiles})
	}
	if nproc && l.Processes > 0 {
		// Counted per user namespace: the run's own processes only.
		rl = append(rl, rlimit{Name: "RLIMIT_NPROC", Resource: unix.RLIMIT_NPROC, Cur: l.Processes, Max: l.Processes})
	}
	return rl
}

// runCgroupOnce is the cgroup of one run, closed once: after the init is
// reaped, or on the way out of a run that ended before. A nil one is no
// cgroup (rlimits only).
type runCgroupOnce struct {
	rc     *runCgroup
	closed bool
	// events is what the cgroup counted, read when it is closed.
	events cgroupEvents
}

// newRunCgroup makes the run's cgroup, or returns nil when the Runner has
// no cgroup layer.
func (r *Runner) newRunCgroup(lim Limits) (*runCgroupOnce, error) {
	if r.cgroups == nil {
		return nil, nil
	}
	rc, err := r.cgroups.create(lim)
	if err != nil {
		return nil, fmt.Errorf("%w: cgroup: %w", ErrSandbox, err)
	}
	return &runCgroupOnce{rc: rc}, nil
}

// close kills what is left in the cgroup, reads its counters and removes
// it, the first time only.
func (c *runCgroupOnce) close() {
	if c == nil || c.closed {
		return
	}
	c.closed = true
	c.events, _ = c.rc.close() // a cgroup not removed is retried at the next run
}

// initDescriptors are the files the worker passes to the init beyond the
// fixed ones (see firstExtraFD), and what the init is executed from.
type initDescriptors struct {
	// vars are the init's descriptors from firstVarFD on.
	vars []*os.File
	// initPath is the init binary: SelfPath, or the descriptor of the
	// dedicated init.
	initPath string
	// mounts are the prepared mounts among vars, closed when the run ends.
	mounts []*os.File
}

// pass passes f to the init and returns the descriptor the init sees it at.
func (d *initDescriptors) pass(f *os.File) int {
	d.vars = append(d.vars, f)
	return d.next() - 1
}

// next is the descriptor the next passed file gets.
func (d *initDescriptors) next() int { return firstVarFD + len(d.vars) }

// extraFiles is cmd.ExtraFiles: configFD, statusFD and exeFD, then vars.
func (d *initDescriptors) extraFiles(config, status, exe *os.File) []*os.File {
	return append([]*os.File{config, status, exe}, d.vars...)
}

// passDescriptors lays out the descriptors of the init and names them in
// p.config: the worker's executable, the dedicated init binary when there
// is one, then (isolated mode) the mounts prepared for the workspace and
// the binds.
func (r *Runner) passDescriptors(p *runParams) (*initDescriptors, error) {
	d := &initDescriptors{initPath: r.selfPath}
	p.config.ExeFD = exeFD
	if r.init != nil {
		d.initPath = "/proc/self/fd/" + strconv.Itoa(d.pass(r.init))
	}
	if r.iso != nil {
		plan, files, err := r.iso.prepare(p.dir, p.tree, p.binds, p.limits, d.next())
		if err != nil {
			return nil, err
		}
		d.mounts = files
		p.config.Isolate = plan
		d.vars = append(d.vars, files...)
	}
	p.config.LastFD = d.next() - 1
	return d, nil
}

// encodeConfig is the config the worker writes on the config pipe.
func encodeConfig(cfg initConfig) ([]byte, error) {
	config, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: encode init config: %w", ErrSandbox, err)
	}
	if len(config) > maxConfigBytes {
		return nil, fmt.Errorf("%w: argv and env too large (%d bytes)", ErrSandbox, len(config))
	}
	return config, nil
}
