package sandbox

// ContainerSyscall is a system call the worker or the sandbox init makes to
// build an isolated run that Docker's default seccomp profile refuses to a
// container without CAP_SYS_ADMIN. deploy/seccomp/warden-worker.json
// allows exactly these on top of that default (cmd/warden's compose test
// checks it against this list).
type ContainerSyscall struct {
	// Name is the system call's name as seccomp profiles spell it.
	Name string
	// CloneFlags are the namespace flags the sandbox passes (clone only);
	// a profile that filters clone's flags must let these through.
	CloneFlags uint64
	// RootOnly is set for calls only a worker running as root makes (the
	// id-mapped mounts of isolation.prepare); the image runs as uid 10001.
	RootOnly bool
	// Why says who makes the call and for what.
	Why string
}

// ContainerSyscalls are the calls of an isolated run that a no-capability
// container's default seccomp profile refuses.
var ContainerSyscalls = []ContainerSyscall{
	{Name: "clone", CloneFlags: isolateCloneflags,
		Why: "the worker starts the init in new user, mount, PID, network, IPC and UTS namespaces (SysProcAttr.Cloneflags); `sandbox check` probes the same"},
	{Name: "clone3",
		Why: "Go's os/exec starts the init with clone3 when it places it in a cgroup (CLONE_INTO_CGROUP, UseCgroupFD); seccomp cannot read clone3's flags, so it is allowed whole"},
	{Name: "mount",
		Why: "the init, inside its user namespace: private propagation, tmpfs root, /dev and /tmp, read-only binds of the system directories, the workspace and binds, a fresh /proc"},
	{Name: "umount2", Why: "the init detaches the host tree after pivot_root"},
	{Name: "pivot_root", Why: "the init makes its assembled view the root"},
	{Name: "mount_setattr", Why: "the init makes the view read-only, nosuid, nodev (recursively, one call per subtree)"},
	{Name: "sethostname", Why: "the init names its UTS namespace warden-sandbox"},
	{Name: "open_tree", RootOnly: true, Why: "a root worker clones the workspace and binds as detached id-mapped mounts"},
	{Name: "move_mount", RootOnly: true, Why: "the init of a root worker attaches those detached mounts"},
	{Name: "unshare", RootOnly: true, Why: "a root worker's workspace thread unshares CLONE_FS, and CLONE_NEWNS the first time, to hold the workspace mount namespace (QuotaTmpfs)"},
	{Name: "setns", RootOnly: true, Why: "a root worker enters its workspace mount namespace to mount and remove the per-run tmpfs that caps a workspace's disk (QuotaTmpfs); a non-root worker budgets instead"},
}
