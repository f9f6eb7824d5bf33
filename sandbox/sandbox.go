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
	"time"
)

// Modes a Runner can run in.
const (
	// ModeIsolated is the default where the host supports it: everything
	// ModeProcess does, plus new user, mount, PID, network, IPC and UTS
	// namespaces (mapped to an unprivileged host uid, never host root), a
	// read-only root with curated binds, the workspace writable, a
	// size-capped tmpfs /tmp and a fresh /proc, no capabilities,
	// no_new_privs, Landlock (at least MinLandlockABI) and a seccomp
	// deny-list. The deadline kills the namespace's PID 1, so the whole tree.
	ModeIsolated = "isolated"
	// ModeProcess is a degraded mode an operator must choose explicitly: a
	// new session and process group, rlimits, a scrubbed environment and
	// closed file descriptors. It does not confine file system or network
	// access; policies see it (PolicyInput.SandboxMode) and should refuse
	// risky tools there.
	ModeProcess = "process"
)

// MinLandlockABI is the lowest Landlock ABI isolated mode accepts (3 adds
// LANDLOCK_ACCESS_FS_TRUNCATE); below it New refuses the mode.
const MinLandlockABI = 3

// Defaults of isolated mode.
const (
	// DefaultTmpBytes caps the tmpfs mounted on /tmp.
	DefaultTmpBytes = 64 << 20
	// DefaultProcesses is RLIMIT_NPROC in isolated mode, where it counts
	// the processes of the sandbox's own user namespace only.
	DefaultProcesses = 256
	// DefaultMemory caps a whole run's memory through its cgroup when the
	// policy sets no memory_bytes: a run of many processes, each within
	// its own limits, must not take the worker's host down.
	DefaultMemory = 1 << 30
	// DefaultCPUs caps a whole run's CPU at one core through its cgroup
	// when the policy sets no cpus: four spinning processes must not take
	// every core of the worker's host.
	DefaultCPUs = 1.0
	// DefaultHostID is the host uid and gid the sandbox's root maps to when
	// the worker runs as host root.
	DefaultHostID = 65534
)

// SelfExe is an Argv[0] that names the executable of the process that
// created the Runner (the worker binary), so a Go tool can re-exec the
// worker binary even where its host path is not visible and when a
// dedicated init binary (Options.SelfPath) runs the sandbox: the Runner
// holds the executable open and hands it to the init.
const SelfExe = "/proc/self/exe"

// Defaults applied to zero Limits fields.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxOutputBytes = 64 << 10
)

// BasePath is the PATH programs see unless Spec.Env overrides it.
const BasePath = "/usr/local/bin:/usr/bin:/bin"

// ErrSandbox wraps every error Run returns: the sandbox could not run the
// program (or the run was interrupted by the caller), so nothing about the
// program's outcome may be assumed.
var ErrSandbox = errors.New("sandbox")

// Limits bound one run. Zero fields mean: Timeout DefaultTimeout,
// MaxOutputBytes DefaultMaxOutputBytes, Processes DefaultProcesses, Memory
// DefaultMemory, TmpBytes DefaultTmpBytes, CPUs DefaultCPUs, DiskBytes and
// DiskInodes the Runner's caps, and no rlimit for the others.
type Limits struct {
	// Timeout is the wall-clock limit; when it passes the whole process
	// group is killed.
	Timeout time.Duration
	// CPUSeconds is RLIMIT_CPU: SIGXCPU at the limit, SIGKILL a second later.
	CPUSeconds uint64
	// AddressSpace is RLIMIT_AS in bytes.
	AddressSpace uint64
	// FileSize is RLIMIT_FSIZE in bytes: the largest file the program may write.
	FileSize uint64
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles uint64
	// Memory caps the memory of the whole run — every process of it, its
	// tmpfs /tmp and page cache included, no swap — through the run's
	// cgroup (memory.max, or memory.limit_in_bytes on cgroup v1); the
	// kernel kills a process of the run when it is exceeded and the Result
	// says so (MemoryExceeded). Zero means DefaultMemory. Without a cgroup
	// (Runner.Cgroup reports CgroupNone) it is not enforced: AddressSpace
	// still bounds each process.
	Memory uint64
	// Processes caps the processes (threads included) of the run: pids.max
	// of the run's cgroup when there is one, in both modes; else
	// RLIMIT_NPROC in isolated mode, where it counts the processes of the
	// run's own user namespace, and nothing in process mode (there
	// RLIMIT_NPROC would count every process of the worker's uid on the
	// host). Zero means DefaultProcesses. The isolated init's own threads
	// are not counted: the cgroup leaves room for a handful more.
	Processes uint64
	// CPUs caps the CPU time of the whole run per second of wall time, in
	// cores (0.5 is half a core), through the run's cgroup (cpu.max, or
	// cpu.cfs_quota_us on cgroup v1): the run is throttled, not killed,
	// and the Result says so (CPUThrottled). Zero means DefaultCPUs;
	// negative means no cap. Without a cpu controller (CgroupReport.CPU
	// false) it is not enforced: CPUSeconds still bounds each process.
	CPUs float64
	// TmpBytes caps the tmpfs on /tmp in isolated mode; zero means
	// DefaultTmpBytes.
	TmpBytes uint64
	// DiskBytes and DiskInodes cap what the run's workspace holds, across
	// every call of the run (the workspace persists between them): bytes
	// allocated and files plus directories. Zero means the Runner's
	// (Options.DiskBytes, DiskInodes), whose zero means DefaultDiskBytes
	// and DefaultDiskInodes; negative means no cap. How they are enforced
	// is the Runner's quota mode (Runner.Quota): a tmpfs per workspace
	// (ENOSPC at the cap; the first call's caps hold for the run), or a
	// budget walk after each call (ErrDiskQuota), see QuotaTmpfs and
	// QuotaBudget.
	DiskBytes, DiskInodes int64
	// MaxOutputBytes caps stdout and stderr each; the rest is read and
	// discarded, and the Truncated flags are set.
	MaxOutputBytes int
}

func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if l.Processes == 0 {
		l.Processes = DefaultProcesses
	}
	if l.Memory == 0 {
		l.Memory = DefaultMemory
	}
	if l.TmpBytes == 0 {
		l.TmpBytes = DefaultTmpBytes
	}
	if l.CPUs == 0 {
		l.CPUs = DefaultCPUs
	}
	return l
}

// Bind grants the program access to a host path outside Dir, such as a
// ledger file. Process mode does not confine file access, so a Bind only
// declares intent there; isolated mode bind-mounts the path at the same
// place (read-only unless Writable) and lets Landlock allow it.
type Bind struct {
	// Path is an absolute host path that exists.
	Path     string
	Writable bool
}

// Spec is one program to run.
type Spec struct {
	// Argv is the program and its arguments. Argv[0] without a slash is
	// looked up in the program's PATH (BasePath unless Env sets PATH).
	Argv []string
	// Dir is the run's workspace (a host path). It must exist; it becomes
	// the working directory and HOME.
	Dir string
	// Env lists extra KEY=VALUE entries. Nothing else of the caller's
	// environment reaches the program: it sees PATH=BasePath, HOME=Dir,
	// TMPDIR=/tmp and LANG=C.UTF-8, overridden or extended by Env.
	Env []string
	// Stdin is the program's standard input; nil means /dev/null.
	Stdin []byte
	// Binds are host paths outside Dir the program needs.
	Binds  []Bind
	Limits Limits
}

// Result is how a program ended.
type Result struct {
	// ExitCode is the program's exit status; 128+N when signal N killed it
	// (as shells report it); 127 when Argv[0] was not found and 126 when it
	// could not be executed (Stderr then says why).
	ExitCode int
	// Stdout and Stderr hold at most Limits.MaxOutputBytes each.
	Stdout, Stderr                   []byte
	StdoutTruncated, StderrTruncated bool
	// TimedOut is set when the Timeout killed the process group.
	TimedOut bool
	// Signal names the signal that ended the program ("SIGKILL",
	// "SIGXCPU"...), empty when it exited.
	Signal string
	// Duration is the wall-clock time from start to exit.
	Duration time.Duration
	// MemoryExceeded is set when the kernel's OOM killer killed a process
	// of the run's cgroup: at Limits.Memory (Stderr then ends with
	// "warden sandbox: killed: memory limit N bytes exceeded ..."), or, with
	// no Memory limit, because the host or the worker's cgroup ran out.
	MemoryExceeded bool
	// ProcessesExceeded is set when the run's cgroup refused a fork at
	// Limits.Processes.
	ProcessesExceeded bool
	// CPUThrottled is set when the run used its whole Limits.CPUs quota
	// in at least one period and waited for the next.
	CPUThrottled bool
	// DiskExceeded is set when the workspace reached its disk cap: its
	// tmpfs has no byte or no inode left after the call (Stderr then ends
	// with "warden sandbox: workspace disk limit ... reached"), or, with
	// the budget walk, the call left it over the budget (Run then also
	// returns an ErrDiskQuota error).
	DiskExceeded bool
}

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
		tree, fallback, err = r.ns.tree(dir, maxBytes, maxInodes, os.Geteuid(), os.Getegid())
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
	p := runParams{
		dir:    dir,
		env:    env,
		stdin:  spec.Stdin,
		limits: lim,
		binds:  spec.Binds,
		config: initConfig{Argv: spec.Argv, Env: env, Rlimits: rlimitsFor(lim, r.iso != nil && r.cgroups == nil)},
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

// Validate checks what Run can check without touching the host: a
// program, a workspace, KEY=VALUE environment entries and absolute, clean
// bind paths without NUL bytes. Run calls it; every error wraps ErrSandbox.
func (s Spec) Validate() error {
	if len(s.Argv) == 0 {
		return fmt.Errorf("%w: empty argv", ErrSandbox)
	}
	for _, a := range s.Argv {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%w: argv entry contains a NUL byte", ErrSandbox)
		}
	}
	if s.Argv[0] == "" {
		return fmt.Errorf("%w: empty program name", ErrSandbox)
	}
	if s.Dir == "" {
		return fmt.Errorf("%w: workspace dir is required", ErrSandbox)
	}
	if strings.ContainsRune(s.Dir, 0) {
		return fmt.Errorf("%w: workspace dir contains a NUL byte", ErrSandbox)
	}
	if _, err := buildEnv("/", s.Env); err != nil {
		return err
	}
	for _, b := range s.Binds {
		if !filepath.IsAbs(b.Path) || strings.ContainsRune(b.Path, 0) {
			return fmt.Errorf("%w: bind path must be absolute, got %q", ErrSandbox, b.Path)
		}
		if filepath.Clean(b.Path) != b.Path || b.Path == "/" {
			return fmt.Errorf("%w: bind path must be clean and not the root, got %q", ErrSandbox, b.Path)
		}
	}
	if s.Limits.Timeout < 0 || s.Limits.MaxOutputBytes < 0 {
		return fmt.Errorf("%w: negative limit", ErrSandbox)
	}
	return nil
}

func checkDir(dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("%w: workspace dir is required", ErrSandbox)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w: workspace: %w", ErrSandbox, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%w: workspace: %w", ErrSandbox, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%w: workspace %s is not a directory", ErrSandbox, abs)
	}
	return abs, nil
}

// buildEnv returns the base environment overridden and extended by extra,
// one entry per key, base keys first.
func buildEnv(dir string, extra []string) ([]string, error) {
	env := []string{
		"PATH=" + BasePath,
		"HOME=" + dir,
		"TMPDIR=/tmp",
		"LANG=C.UTF-8",
	}
	index := map[string]int{"PATH": 0, "HOME": 1, "TMPDIR": 2, "LANG": 3}
	for _, kv := range extra {
		key, _, ok := strings.Cut(kv, "=")
		if !ok || key == "" || strings.ContainsRune(kv, 0) {
			return nil, fmt.Errorf("%w: env entry %q is not KEY=VALUE", ErrSandbox, kv)
		}
		if i, dup := index[key]; dup {
			env[i] = kv
			continue
		}
		index[key] = len(env)
		env = append(env, kv)
	}
	return env, nil
}

// runParams is one prepared run.
type runParams struct {
	dir    string
	env    []string
	stdin  []byte
	limits Limits
	binds  []Bind
	config initConfig
	// tree is the workspace's tmpfs (a detached clone) with QuotaTmpfs.
	tree *os.File
}

// initConfig is what the parent sends the init over the config pipe.
type initConfig struct {
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Rlimits []rlimit `json:"rlimits,omitempty"`
	// Probe asks the init to acknowledge and exit 0 without exec (after
	// building the isolation, when Isolate is set).
	Probe bool `json:"probe,omitempty"`
	// Isolate is set in isolated mode: the init builds the walls, forks the
	// program as PID 2 of the namespace and reports how it ended.
	Isolate *isolatePlan `json:"isolate,omitempty"`
	// ExeFD is the descriptor of the worker's executable, run for SelfExe.
	ExeFD int `json:"exe_fd,omitempty"`
	// LastFD is the highest descriptor the worker passes; the init closes
	// every descriptor above it at once (ones the worker inherited without
	// close-on-exec) and, in isolated mode, every passed one the program
	// does not need before it forks the program.
	LastFD int `json:"last_fd"`
	// Protocol is initProtocol of the worker; an init of another build
	// refuses to run.
	Protocol int `json:"protocol"`
}

// initProtocol versions the config the worker sends the init.
// 3: the worker closes the config pipe as the start signal, after moving
// the init into the run's cgroup.
// 4: LastFD; an isolated init exits with the program's exit code (128 +
// signal), which the worker holds its status report to.
const initProtocol = 4

// rlimit is one resource limit the init applies before exec.
type rlimit struct {
	Name     string `json:"name"`
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// initStatus is what the init reports when it cannot exec the target.
type initStatus struct {
	// Stage is "setup" (the sandbox failed) or "exec" (the program could
	// not be started: not found, not executable).
	Stage    string `json:"stage"`
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
	// Signal is the signal number that ended the program (stage "exited").
	Signal int `json:"signal,omitempty"`
}

// Protocol between Run and the init.
const (
	// initArg is the hidden first argument that makes Init act.
	initArg = "__warden_sandbox_init"
	// configFD and statusFD are the init's config (read) and status
	// (write, closed on exec) pipes.
	configFD = 3
	statusFD = 4
	// ackByte is the first byte the init writes on the status pipe, proving
	// the re-executed binary is a sandbox init.
	ackByte = 'W'

	stageSetup  = "setup"
	stageExec   = "exec"
	stageExited = "exited"

	maxConfigBytes = 16 << 20
	maxStatusBytes = 64 << 10
)
