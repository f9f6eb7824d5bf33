package main

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/sandbox"
)

// sandboxCheck is what `warden sandbox check` reports.
type sandboxCheck struct {
	sandbox.HostReport
	// Configured is the mode asked for (--sandbox-mode, WARDEN_SANDBOX_MODE);
	// empty means the default, isolated.
	Configured string `json:"configured_mode"`
	// WorkerMode is the mode `warden worker` would run tools in, empty when
	// it would refuse to start (WorkerError says why).
	WorkerMode  string `json:"worker_mode"`
	WorkerError string `json:"worker_error,omitempty"`
	Degraded    bool   `json:"degraded"`
	// Quota is how the worker would cap each run's workspace.
	Quota sandbox.QuotaReport `json:"disk_quota"`
	// IDMap is who the sandbox's root is on the host.
	IDMap idMap `json:"id_map"`
	// Filter is the system call filter: "deny-list" (not an allowlist).
	Filter string `json:"syscall_filter"`
}

// idMap is the sandbox's root on the host: the one host uid and gid it
// maps to, which own on disk what a program creates in its workspace.
type idMap struct {
	HostUID int `json:"host_uid"`
	HostGID int `json:"host_gid"`
}

func newSandboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Inspect the tool sandbox on this host",
	}
	cmd.AddCommand(newSandboxCheckCmd())
	return cmd
}

func newSandboxCheckCmd() *cobra.Command {
	var mode, cgroupParent, diskQuota string
	var hostUID, hostGID int
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report namespaces, Landlock, seccomp and cgroups on this host, and the mode the worker would run tools in",
		Long: "check probes this host the way the worker does: it starts a child in new user, mount, PID, network,\n" +
			"IPC and UTS namespaces, reads the Landlock ABI, checks seccomp, finds the cgroup layer that bounds each run's\n" +
			"memory and processes (v2 delegated, v1, or none: rlimits only), then builds the sandbox in the configured\n" +
			"mode and runs its self-test. It exits non-zero when the worker would refuse to start.",
		Args: cobra.NoArgs,
	}
	out := outputFlag(cmd.Flags())
	cmd.Flags().StringVar(&mode, "sandbox-mode", env("SANDBOX_MODE", ""), "tool isolation mode to check: isolated (default) or process (degraded) (WARDEN_SANDBOX_MODE)")
	cmd.Flags().StringVar(&cgroupParent, "sandbox-cgroup-parent", env("SANDBOX_CGROUP_PARENT", ""), "delegated cgroup v2 the worker would put each run's cgroup under (WARDEN_SANDBOX_CGROUP_PARENT)")
	cmd.Flags().StringVar(&diskQuota, "sandbox-disk-quota", env("SANDBOX_DISK_QUOTA", ""), "workspace disk quota mode to check: empty for the best, tmpfs, budget or none (WARDEN_SANDBOX_DISK_QUOTA)")
	cmd.Flags().IntVar(&hostUID, "sandbox-host-uid", envInt("SANDBOX_HOST_UID"), "host uid the sandbox's root maps to when the worker runs as root (WARDEN_SANDBOX_HOST_UID)")
	cmd.Flags().IntVar(&hostGID, "sandbox-host-gid", envInt("SANDBOX_HOST_GID"), "host gid the sandbox's root maps to when the worker runs as root (WARDEN_SANDBOX_HOST_GID)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.validate(); err != nil {
			return err
		}
		c := sandboxCheck{HostReport: sandbox.Check(), Configured: mode, Filter: "deny-list"}
		r, err := sandbox.New(sandbox.Options{Mode: mode, CgroupParent: cgroupParent, DiskQuota: diskQuota, HostUID: hostUID, HostGID: hostGID,
			DiskBytes: envInt64("SANDBOX_DISK_BYTES"), DiskInodes: envInt64("SANDBOX_DISK_INODES")})
		if err != nil {
			c.WorkerError = err.Error()
		} else {
			c.WorkerMode = r.Mode()
			c.Degraded = r.Mode() != sandbox.ModeIsolated
			c.Cgroup = r.Cgroup()
			c.Quota = r.Quota()
			c.IDMap.HostUID, c.IDMap.HostGID = r.HostIDs()
		}
		yes := func(b bool) string {
			if b {
				return "yes"
			}
			return "no"
		}
		rows := [][]string{
			{"os/arch", c.OS + "/" + c.Arch, ""},
			{"running as root", yes(c.Root), ""},
			{"uid map", idMapResult(c), idMapNote(c)},
			{"user+mount+pid+net+ipc+uts namespaces", yes(c.UserNamespaces), c.UserNamespacesError},
			{"landlock ABI", strconv.Itoa(c.LandlockABI), fmt.Sprintf("minimum %d", c.MinLandlockABI)},
			{"seccomp", yes(c.Seccomp), map[bool]string{true: "deny-list for " + c.Arch, false: "no deny-list for " + c.Arch}[c.SeccompDenyList]},
			{"cgroup v2", yes(c.CgroupV2), "controllers: " + strings.Join(c.CgroupControllers, " ")},
			{"cgroup v1", yes(len(c.CgroupV1Controllers) > 0), "controllers: " + strings.Join(c.CgroupV1Controllers, " ")},
			{"cgroup limits", c.Cgroup.Mode, cgroupNote(c.Cgroup)},
			{"cpu per run", yes(c.Cgroup.CPU), map[bool]string{true: "cgroup CPU bandwidth cap (default 1 core)", false: "no cpu controller: CPU bounded per process only (RLIMIT_CPU)"}[c.Cgroup.CPU]},
			{"disk quota per run", cmp.Or(c.Quota.Mode, "-"), quotaNote(c.Quota)},
			{"syscall filter", c.Filter, "seccomp deny-list with argument checks (openat2 ENOSYS, fallocate mode 0, socket families, clone namespace flags); not an allowlist: a call not listed reaches the kernel"},
			{"host supports", map[bool]string{true: sandbox.ModeIsolated, false: "process only"}[c.Mode == sandbox.ModeIsolated], strings.Join(c.Problems, "; ")},
		}
		worker := []string{"worker mode", c.WorkerMode, ""}
		switch {
		case c.WorkerError != "":
			worker[1], worker[2] = "REFUSES TO START", c.WorkerError
		case c.Degraded:
			worker[2] = "DEGRADED: no file system or network confinement; policies see sandbox_mode=" + c.WorkerMode
		}
		rows = append(rows, worker)
		var table []any
		if out.format == "table" {
			table = toAny(rows)
		}
		if err := out.print(cmd.OutOrStdout(), c, table, []string{"CHECK", "RESULT", "NOTE"}, func(i int) []string {
			return rows[i]
		}); err != nil {
			return err
		}
		if c.WorkerError != "" {
			return fmt.Errorf("the worker would refuse to start in sandbox mode %q", mode)
		}
		return nil
	}
	return cmd
}

// quotaNote says how each run's workspace is capped and why a better mode
// is not used.
func quotaNote(q sandbox.QuotaReport) string {
	switch q.Mode {
	case "":
		return "the worker would not start"
	case sandbox.QuotaTmpfs:
		return q.String() + "; workspaces kept in the mount namespace " + q.Namespace
	}
	return q.String()
}

// cgroupNote says where runs get their cgroups, or that rlimits alone
// bound them, and why a better mode is not used.
func cgroupNote(c sandbox.CgroupReport) string {
	note := "per run under " + strings.Join(c.Paths, " ")
	if c.Mode == sandbox.CgroupNone {
		note = "rlimits only: RLIMIT_AS per process, RLIMIT_NPROC per run, no total of a run's memory"
	}
	if len(c.Notes) > 0 {
		note += " (" + strings.Join(c.Notes, "; ") + ")"
	}
	return note
}

// idMapResult is the uid map row: "0 -> UID:GID" inside to host.
func idMapResult(c sandboxCheck) string {
	if c.WorkerError != "" {
		return "-"
	}
	return fmt.Sprintf("0 -> %d:%d", c.IDMap.HostUID, c.IDMap.HostGID)
}

func idMapNote(c sandboxCheck) string {
	switch {
	case c.WorkerError != "":
		return ""
	case c.WorkerMode == sandbox.ModeProcess:
		return "process mode: tools run as the worker's own uid and gid"
	case c.Root:
		return fmt.Sprintf("sandbox root is host uid %d (one id, not host root); workspace files are owned by it on disk (no id map), mounted nosuid,nodev", c.IDMap.HostUID)
	}
	return "sandbox root is this uid (one id); workspace mounted nosuid,nodev"
}
