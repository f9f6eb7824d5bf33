package sandbox

// HostReport is what this host offers the sandbox, for `warden sandbox
// check` and for operators choosing a mode.
type HostReport struct {
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// Root is true when the worker runs as host root (the sandbox then maps
	// to DefaultHostID, never to root).
	Root bool `json:"root"`
	// UserNamespaces is true when a child could be started in new user,
	// mount, PID, network, IPC and UTS namespaces.
	UserNamespaces      bool   `json:"user_namespaces"`
	UserNamespacesError string `json:"user_namespaces_error,omitempty"`
	// LandlockABI is 0 without Landlock.
	LandlockABI    int  `json:"landlock_abi"`
	MinLandlockABI int  `json:"min_landlock_abi"`
	Seccomp        bool `json:"seccomp"`
	// SeccompDenyList is true when Warden has a deny-list for this architecture.
	SeccompDenyList bool `json:"seccomp_deny_list"`
	// CgroupV2 is true when a cgroup v2 hierarchy is mounted (alone or as
	// the unified hierarchy of a hybrid setup); CgroupControllers are those
	// available there, CgroupV1Controllers those mounted as v1
	// hierarchies. The sandbox limits memory, processes and CPU with
	// rlimits; cgroups are reported, not used yet.
	CgroupV2            bool     `json:"cgroup_v2"`
	CgroupControllers   []string `json:"cgroup_controllers"`
	CgroupV1Controllers []string `json:"cgroup_v1_controllers"`
	// Mode is the mode a Runner with an empty Options.Mode gets here:
	// ModeIsolated, or "" when New refuses (Problems say why) and only an
	// explicit ModeProcess would run.
	Mode     string   `json:"mode"`
	Problems []string `json:"problems,omitempty"`
}
