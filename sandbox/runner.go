// The Runner: its Options, New (which picks the cgroup and disk quota
// layers and proves the init), its reports and Run, which wraps one run
// of the init (prepare_linux.go, run_linux.go, report_linux.go) in the
// workspace's disk quota.

package sandbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Options configure a Runner.
type Options struct {
	// Mode is the isolation mode: ModeIsolated or ModeProcess. Empty means
	// ModeIsolated, and New fails (never downgrades silently) where the host
	// cannot isolate; ModeProcess must be chosen explicitly. An unknown mode
	// is an error.
	Mode string
	// ProcessAsRoot accepts ModeProcess when the worker runs as root, where
	// each tool runs as host root with every capability; without it New
	// refuses that combination.
	ProcessAsRoot bool
	// HostUID and HostGID are the unprivileged host ids the sandbox's root
	// maps to in isolated mode when the worker runs as host root (zero
	// means DefaultHostID). A worker that is not root maps its own ids.
	HostUID, HostGID int
	// SelfPath is the binary re-executed as the sandbox init; it must call
	// Init first thing in main. Empty means the running executable,
	// through /proc/self/exe, so a binary replaced on disk during a deploy
	// still re-executes the code that is running. A dedicated init built
	// from ./sandbox/cmd/warden-sandbox-init starts in a fraction of the
	// time of a large worker binary (it links only this package); it must
	// come from the same build as the worker (New's self-test checks the
	// protocol).
	SelfPath string
	// Cgroups chooses the cgroup layer that bounds a run's memory and
	// processes: empty means the best the host offers (CgroupV2 where a
	// cgroup with the memory and pids controllers can be delegated, else
	// CgroupV1 where the v1 memory and pids hierarchies are writable,
	// else CgroupNone: rlimits only); CgroupV2 or CgroupV1 ask for that
	// one, and New fails where it is not usable; CgroupNone turns cgroups
	// off.
	Cgroups string
	// CgroupParent is the cgroup v2 directory (e.g.
	// /sys/fs/cgroup/system.slice/warden.service/sandboxes) under which
	// runs get their cgroups; it must offer the memory and pids
	// controllers and hold no processes, and New fails where it does not.
	// Empty means the worker's own v2 cgroup, which works only where the
	// worker may enable controllers there (the root cgroup, as root).
	CgroupParent string
	// DiskQuota chooses how each run's workspace is capped (DiskBytes,
	// DiskInodes): empty means the best the host offers (QuotaTmpfs where
	// the worker runs isolated as root and can mount, else QuotaBudget);
	// QuotaTmpfs asks for it and New fails where it does not work;
	// QuotaBudget forces the after-the-fact walk; QuotaNone turns the
	// quota off.
	DiskQuota string
	// DiskBytes and DiskInodes are the workspace caps of a call whose
	// Limits set none: zero means DefaultDiskBytes and DefaultDiskInodes,
	// negative no cap.
	DiskBytes, DiskInodes int64
	// WorkspaceNamespace is the file that keeps the workspace mount
	// namespace of QuotaTmpfs across worker restarts; empty means
	// DefaultWorkspaceNamespace.
	WorkspaceNamespace string
}

// Runner runs programs in the sandbox. It is safe for concurrent use.
type Runner struct {
	mode     string
	selfPath string
	iso      *isolation
	// drop is the host id a root worker's process mode runs tools as.
	drop *processDrop
	// cgroups makes each run's cgroup; nil means rlimits only.
	cgroups *cgroups
	cgroup  CgroupReport
	// quota is how workspaces are capped; ns is the workspace mount
	// namespace of QuotaTmpfs.
	quota QuotaReport
	ns    *wsNamespace
	// measured holds each budgeted workspace's usage as the last call
	// left it (dir to usage), so the next call of the run starts without
	// walking it again: only the run's calls write there. A restarted
	// worker walks once.
	measured sync.Map
	// exe is the running executable, handed to the init for SelfExe.
	exe *os.File
	// init is the dedicated init binary, executed through its descriptor
	// (the sandbox's unprivileged uid may not traverse its directory); nil
	// when the init is the running executable.
	init *os.File
}

// New checks opts and the platform and returns a Runner. It starts the init
// once to prove that SelfPath acts as the sandbox init, so a binary whose
// main forgot to call Init fails here, at startup, rather than on a tool call.
func New(opts Options) (*Runner, error) {
	mode := opts.Mode
	if mode == "" {
		mode = ModeIsolated
	}
	if mode != ModeProcess && mode != ModeIsolated {
		return nil, fmt.Errorf("%w: unknown mode %q (supported: %q, %q)", ErrSandbox, opts.Mode, ModeIsolated, ModeProcess)
	}
	if mode == ModeProcess && os.Geteuid() == 0 && !opts.ProcessAsRoot {
		return nil, fmt.Errorf("%w: process mode as root would run every tool as host root with all capabilities, "+
			"able to read the worker's memory, environment and keys: run the worker as an unprivileged user, use the %q mode, "+
			"or accept it explicitly (--sandbox-process-as-root, WARDEN_SANDBOX_PROCESS_AS_ROOT=1)", ErrSandbox, ModeIsolated)
	}
	self := opts.SelfPath
	if self == "" {
		self = defaultSelfPath()
	}
	if !filepath.IsAbs(self) {
		abs, err := filepath.Abs(self)
		if err != nil {
			return nil, fmt.Errorf("%w: self path: %w", ErrSandbox, err)
		}
		self = abs
	}
	if _, err := os.Stat(self); err != nil {
		return nil, fmt.Errorf("%w: self path: %w", ErrSandbox, err)
	}
	exe, err := openExecutable()
	if err != nil {
		return nil, fmt.Errorf("%w: open the running executable: %w", ErrSandbox, err)
	}
	r := &Runner{mode: mode, selfPath: self, exe: exe}
	if self != SelfExe {
		if r.init, err = os.Open(self); err != nil {
			return nil, fmt.Errorf("%w: self path: %w", ErrSandbox, err)
		}
	}
	switch opts.Cgroups {
	case "", CgroupV2, CgroupV1, CgroupNone:
	default:
		return nil, fmt.Errorf("%w: unknown cgroup mode %q (supported: %q, %q, %q, or empty for the best available)",
			ErrSandbox, opts.Cgroups, CgroupV2, CgroupV1, CgroupNone)
	}
	r.cgroups, r.cgroup = detectCgroups(opts)
	if opts.CgroupParent != "" && r.cgroup.Mode != CgroupV2 {
		return nil, fmt.Errorf("%w: cgroup parent %s is not usable (%s); delegate the memory and pids controllers to it, or leave it empty for the best available",
			ErrSandbox, opts.CgroupParent, strings.Join(r.cgroup.Notes, "; "))
	}
	if (opts.Cgroups == CgroupV2 || opts.Cgroups == CgroupV1) && r.cgroup.Mode != opts.Cgroups {
		// An explicit choice is never downgraded silently.
		return nil, fmt.Errorf("%w: cgroup %s is not usable on this host (%s); leave the cgroup mode empty for the best available",
			ErrSandbox, opts.Cgroups, strings.Join(r.cgroup.Notes, "; "))
	}
	if mode == ModeIsolated {
		iso, err := newIsolation(opts)
		if err != nil {
			return nil, fmt.Errorf("%w: mode %s is not available on this host (choose mode %q explicitly to run degraded): %w",
				ErrSandbox, ModeIsolated, ModeProcess, err)
		}
		r.iso = iso
	} else if r.drop, err = newProcessDrop(opts); err != nil {
		return nil, err
	}
	if err := r.detectQuota(opts); err != nil {
		return nil, err
	}
	if err := r.probe(); err != nil {
		return nil, err
	}
	return r, nil
}

// detectQuota picks the disk quota mode: tmpfs where it works, else the
// budget walk (an explicit choice is never downgraded).
func (r *Runner) detectQuota(opts Options) error {
	q := QuotaReport{Bytes: opts.DiskBytes, Inodes: opts.DiskInodes}
	if q.Bytes == 0 {
		q.Bytes = DefaultDiskBytes
	}
	if q.Inodes == 0 {
		q.Inodes = DefaultDiskInodes
	}
	switch opts.DiskQuota {
	case QuotaNone:
		q.Mode = QuotaNone
		r.quota = q
		return nil
	case QuotaBudget:
		q.Mode = QuotaBudget
		q.Notes = append(q.Notes, "chosen explicitly")
		r.quota = q
		return nil
	case "", QuotaTmpfs:
	default:
		return fmt.Errorf("%w: unknown disk quota mode %q (supported: %q, %q, %q, or empty for the best available)",
			ErrSandbox, opts.DiskQuota, QuotaTmpfs, QuotaBudget, QuotaNone)
	}
	var why string
	switch {
	case r.iso == nil:
		why = "tmpfs: process mode runs tools in the host's mount namespace"
	case !r.iso.root:
		why = "tmpfs: the worker is not root, so it cannot mount a tmpfs the sandbox's id-mapped workspace can use"
	default:
		file := cmp.Or(opts.WorkspaceNamespace, DefaultWorkspaceNamespace)
		ns, err := openWorkspaceNamespace(file)
		if ns != nil && err != nil && opts.DiskQuota == "" {
			// Workspaces that a worker restart would lose are worse than
			// a budget after the fact; asked for explicitly, tmpfs it is.
			why = "tmpfs: " + err.Error()
		} else if ns != nil {
			if err != nil {
				q.Notes = append(q.Notes, err.Error())
			}
			if perr := ns.probe(); perr != nil {
				why = "tmpfs: " + perr.Error()
			} else {
				r.ns = ns
				q.Mode = QuotaTmpfs
				q.Namespace = ns.file
				r.quota = q
				return nil
			}
		} else {
			why = "tmpfs: " + err.Error()
		}
	}
	if opts.DiskQuota == QuotaTmpfs {
		return fmt.Errorf("%w: disk quota %s is not usable on this host (%s); leave the disk quota mode empty for the best available",
			ErrSandbox, QuotaTmpfs, why)
	}
	q.Mode = QuotaBudget
	q.Notes = append(q.Notes, why)
	r.quota = q
	return nil
}

// Quota reports how each run's workspace is capped: QuotaTmpfs,
// QuotaBudget or QuotaNone, the default caps and why a better mode is not
// used.
func (r *Runner) Quota() QuotaReport { return r.quota }

// HostPath is where the host reads the workspace dir's files: dir itself,
// or with QuotaTmpfs, dir seen through the workspace mount namespace (the
// host's dir stays empty).
func (r *Runner) HostPath(dir string) string {
	if r.ns == nil {
		return dir
	}
	return r.ns.hostPath(dir)
}

// RemoveWorkspace removes a workspace no run needs any more: it unmounts
// its tmpfs (without following a link at dir) and removes the directory
// without following links the tool planted (see the function
// RemoveWorkspace).
func (r *Runner) RemoveWorkspace(dir string) error {
	r.measured.Delete(dir)
	if r.ns != nil {
		if err := r.ns.unmount(dir); err != nil {
			return err
		}
	}
	return RemoveWorkspace(dir)
}

// Mode returns the isolation mode, for policies and the audit.
func (r *Runner) Mode() string { return r.mode }

// Cgroup reports the cgroup layer that bounds each run's memory and
// processes: CgroupV2 or CgroupV1 with the base cgroups, or CgroupNone
// (rlimits only) with the reasons.
func (r *Runner) Cgroup() CgroupReport { return r.cgroup }

// Run runs spec.Argv in the sandbox and waits for it, the whole process
// group included. A program that fails — exits non-zero, is killed by a
// limit or the Timeout, or cannot be found — is a Result, not an error. Run
// returns an error (wrapping ErrSandbox) only when the sandbox itself could
// not run the program, or when ctx ended before the program did (then the
// Result describes what is known and the outcome must be treated as
// unknown).
func (r *Runner) Run(ctx context.Context, spec Spec) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	dir, err := checkDir(spec.Dir)
	if err != nil {
		return Result{}, err
	}
	env, err := buildEnv(dir, spec.Env)
	if err != nil {
		return Result{}, err
	}
	for _, b := range spec.Binds {
		if _, err := os.Stat(b.Path); err != nil {
			return Result{}, fmt.Errorf("%w: bind: %w", ErrSandbox, err)
		}
	}
	lim := spec.Limits.withDefaults()
	maxBytes, maxInodes := r.diskCaps(spec.Limits)
	quota := r.quota.Mode
	var tree *os.File
	// fallback says why a workspace of a tmpfs Runner is budgeted instead.
	var fallback string
	if quota == QuotaTmpfs {
		uid, gid := r.HostIDs()
		tree, fallback, err = r.ns.tree(dir, maxBytes, maxInodes, uid, gid)
		if err != nil {
			return Result{}, err
		}
		if tree == nil {
			quota = QuotaBudget
		} else {
			defer tree.Close()
		}
	}
	if quota == QuotaBudget {
		var err error
		if last, ok := r.measured.Load(dir); ok {
			err = overBudget(dir, last.(usage), maxBytes, maxInodes, "before")
		} else {
			_, err = checkBudget(dir, maxBytes, maxInodes, "before")
		}
		if err != nil {
			return Result{DiskExceeded: true}, withFallback(err, fallback)
		}
	}
	if r.drop != nil {
		if err := r.drop.handOver(dir); err != nil {
			return Result{}, err
		}
	}
	p := runParams{
		dir:    dir,
		env:    env,
		stdin:  spec.Stdin,
		limits: lim,
		binds:  spec.Binds,
		config: initConfig{Argv: spec.Argv, Env: env, Rlimits: rlimitsFor(lim, r.iso != nil && r.cgroups == nil), Drop: r.drop},
		tree:   tree,
	}
	res, err := r.run(ctx, p)
	switch quota {
	case QuotaTmpfs:
		if bytesFull, inodesFull := r.ns.full(dir); bytesFull || inodesFull {
			res.DiskExceeded = true
			what := fmt.Sprintf("%d bytes", maxBytes)
			if inodesFull {
				what = fmt.Sprintf("%d files and directories", maxInodes)
			}
			res.note("warden sandbox: workspace disk limit " + what + " reached (writes failed with ENOSPC)")
		}
	case QuotaBudget:
		if err != nil {
			// The call's outcome is unknown: the next one walks.
			r.measured.Delete(dir)
		} else {
			u, qerr := checkBudget(dir, maxBytes, maxInodes, "after")
			if qerr == nil || errors.Is(qerr, errOverBudget) {
				r.measured.Store(dir, u)
			} else {
				r.measured.Delete(dir)
			}
			if qerr != nil {
				res.DiskExceeded = true
				return res, withFallback(qerr, fallback)
			}
		}
	}
	return res, err
}

// withFallback adds to a budget error why the workspace has no tmpfs.
func withFallback(err error, fallback string) error {
	if fallback == "" {
		return err
	}
	return fmt.Errorf("%w (budgeted, not a tmpfs: %s)", err, fallback)
}

// note appends a line to Stderr.
func (res *Result) note(line string) {
	if len(res.Stderr) > 0 && res.Stderr[len(res.Stderr)-1] != '\n' {
		res.Stderr = append(res.Stderr, '\n')
	}
	res.Stderr = append(res.Stderr, line+"\n"...)
}
