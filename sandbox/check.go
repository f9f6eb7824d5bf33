package sandbox

import "strings"

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
	// hierarchies.
	CgroupV2            bool     `json:"cgroup_v2"`
	CgroupControllers   []string `json:"cgroup_controllers"`
	CgroupV1Controllers []string `json:"cgroup_v1_controllers"`
	// Cgroup is the cgroup layer a Runner with default Options uses here
	// to bound each run's memory and processes.
	Cgroup CgroupReport `json:"cgroup"`
	// Mode is the mode a Runner with an empty Options.Mode gets here:
	// ModeIsolated, or "" when New refuses (Problems say why) and only an
	// explicit ModeProcess would run.
	Mode     string   `json:"mode"`
	Problems []string `json:"problems,omitempty"`
}

// Cgroup modes (Options.Cgroups, CgroupReport.Mode).
const (
	// CgroupV2 gives each run a cgroup v2 with memory.max, memory.swap.max
	// and pids.max, below a cgroup the worker may delegate; the init is
	// cloned into it.
	CgroupV2 = "v2"
	// CgroupV1 gives each run a cgroup in the v1 memory and pids
	// hierarchies (memory.limit_in_bytes, memory.memsw.limit_in_bytes,
	// pids.max); the worker moves the init in before it runs anything.
	CgroupV1 = "v1"
	// CgroupNone bounds runs with rlimits only: RLIMIT_AS per process,
	// RLIMIT_NPROC per run in isolated mode, no total of a run's memory.
	CgroupNone = "none"
)

// CgroupReport says which cgroup layer bounds the runs' memory and
// processes.
type CgroupReport struct {
	// Mode is CgroupV2, CgroupV1 or CgroupNone.
	Mode string `json:"mode"`
	// Paths are the base cgroups each run's cgroup is created in: one on
	// v2; the memory and the pids one on v1.
	Paths []string `json:"paths,omitempty"`
	// CPU is set when runs get a CPU bandwidth cap (Limits.CPUs): the v2
	// cpu controller or the v1 cpu hierarchy. Without it CPU is bounded
	// per process only (RLIMIT_CPU).
	CPU bool `json:"cpu"`
	// Notes say why a better mode is not used (e.g. "v2: ... offers
	// controllers [hugetlb], needs memory and pids").
	Notes []string `json:"notes,omitempty"`
}

// String is the one-line form the worker logs and check prints.
func (c CgroupReport) String() string {
	cpu := "; CPU per process only (RLIMIT_CPU)"
	if c.CPU {
		cpu = "; CPU capped per run"
	}
	switch c.Mode {
	case CgroupV2:
		return "v2 delegated at " + strings.Join(c.Paths, " ") + cpu
	case CgroupV1:
		return "v1 at " + strings.Join(c.Paths, " ") + cpu
	}
	return "none: rlimits only"
}
