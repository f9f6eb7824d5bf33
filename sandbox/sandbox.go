// The sandbox's public vocabulary: the modes, the defaults, Limits and
// what a run is given (Spec, Bind) and returns (Result).

package sandbox

import (
	"errors"
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
