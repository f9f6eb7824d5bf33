// Package sandbox runs one program in an isolated Linux process with
// resource limits, a scrubbed environment, a wall-clock deadline that kills
// the whole process tree, and capped output.
//
// The worker binary re-executes itself as a small init (hidden first
// argument "__warden_sandbox_init", see Init): the init receives its
// configuration over a pipe (fd 3), acknowledges on a status pipe (fd 4),
// waits for the worker to close the config pipe (the start signal, sent once
// the init is in the run's cgroup), applies the limits and execs the
// target; exec closes the status pipe, so
// Run can tell a failed exec (reported on the pipe) from the program's own
// failure. Every program — a process
// tool such as `sh`, or a Go tool that re-execs the worker binary again —
// goes through the same init, so every tool gets the same walls.
//
// Two modes. ModeIsolated, the default, adds new user, mount, PID,
// network, IPC and UTS namespaces (root inside maps to an unprivileged host
// uid), pivot_root into a curated read-only view with the workspace
// writable, a size-capped tmpfs /tmp and a fresh /proc, no capabilities,
// no_new_privs, Landlock and a seccomp deny-list; the init stays PID 1 of
// the namespace, so the deadline kills the whole tree. New refuses it where
// the host cannot isolate (see Check) rather than downgrading. ModeProcess
// is the degraded mode an operator chooses explicitly: a new session and
// process group, rlimits (CPU, address space, file size, open files, no
// core dumps), no inherited file descriptors beyond stdin, stdout and
// stderr, and an environment reduced to a fixed base plus what the caller
// lists; as root (with consent) it runs the program as an unprivileged host
// id with no_new_privs and no capabilities. It does not confine file
// system or network access. Policies see
// the mode (Runner.Mode).
//
// In both modes, where the host offers one (a delegated cgroup v2 with the
// memory and pids controllers, or writable v1 memory and pids
// hierarchies), every run gets a fresh cgroup bounding the memory and the
// processes of the whole run; the program starts inside it, and it is
// killed and removed when the run ends. Elsewhere rlimits alone bound
// them. Runner.Cgroup says which. docs/sandbox.md describes the walls.
//
// Files, by job: sandbox.go (modes, defaults, Limits, Spec, Result),
// runner.go (Options, New, Run), spec.go (checks of a Spec), protocol.go
// (what the worker and the init exchange, and which descriptor is which);
// on Linux, the run of the init by stage in prepare_linux.go (cgroup,
// descriptors, config), run_linux.go (start, hand-over, wait) and
// report_linux.go (the Result), with pipes_linux.go; the init itself in
// init_linux.go and spawn_linux.go; the walls in walls_linux.go (the
// view, one step a function), mounts_linux.go, lockdown_linux.go,
// landlock_linux.go and seccomp_linux.go; isolate_linux.go (namespaces and
// prepared mounts); owner_linux.go (the workspace handed to the sandbox's
// host id); process_linux.go (process mode as root: the drop to that id);
// cgroup_setup_linux.go and cgroup_linux.go (the cgroup
// layer and a run's cgroup); quota.go and quota_linux.go (workspace disk
// caps); check.go, check_linux.go and container_linux.go (what the host
// offers); sandbox_other.go (other systems: nothing).
//
// Programs that call sandbox.New must call Init first thing in main (and in
// TestMain), because the re-executed binary is the program itself:
//
//	func main() {
//		sandbox.Init()
//		...
//	}
package sandbox
