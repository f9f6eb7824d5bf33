package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/sandbox"
)

// TestSandboxCheckCgroup: check names the cgroup layer the worker would
// bound runs with, the same the sandbox finds on this host.
func TestSandboxCheckCgroup(t *testing.T) {
	t.Parallel()
	want := sandbox.Check().Cgroup
	out, err := cli(t, "sandbox", "check", "-o", "json")
	require.NoError(t, err)
	var c sandboxCheck
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.Equal(t, want.Mode, c.Cgroup.Mode)
	require.Equal(t, want.Paths, c.Cgroup.Paths)
	require.Equal(t, want.CPU, c.Cgroup.CPU, "check reports whether runs get a CPU cap")
	for _, p := range c.Cgroup.Paths {
		require.DirExists(t, p)
	}
	if os.Geteuid() != 0 {
		require.Equal(t, sandbox.CgroupNone, c.Cgroup.Mode)
	}

	table, err := cli(t, "sandbox", "check")
	require.NoError(t, err)
	var row string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "cgroup limits") {
			row = line
		}
	}
	require.NotEmpty(t, row, table)
	require.Contains(t, table, map[bool]string{true: "cgroup CPU bandwidth cap", false: "CPU bounded per process only"}[c.Cgroup.CPU])
	switch c.Cgroup.Mode {
	case sandbox.CgroupNone:
		require.Contains(t, row, "rlimits only")
	default:
		require.Contains(t, row, "per run under "+strings.Join(c.Cgroup.Paths, " "))
	}
	t.Log(table)

	// A named parent that is not a delegated cgroup v2: the worker would
	// refuse to start, and check says so.
	_, err = cli(t, "sandbox", "check", "--sandbox-cgroup-parent", t.TempDir())
	require.ErrorContains(t, err, "would refuse to start")
}

// TestSandboxCheckDiskQuota: check says which disk quota mode the worker
// would cap workspaces with, and why.
func TestSandboxCheckDiskQuota(t *testing.T) {
	t.Parallel()
	out, err := cli(t, "sandbox", "check", "-o", "json")
	require.NoError(t, err)
	var c sandboxCheck
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	want := map[bool]string{true: sandbox.QuotaTmpfs, false: sandbox.QuotaBudget}[os.Geteuid() == 0]
	require.Equal(t, want, c.Quota.Mode)
	require.Equal(t, int64(sandbox.DefaultDiskBytes), c.Quota.Bytes)

	table, err := cli(t, "sandbox", "check", "--sandbox-disk-quota", sandbox.QuotaBudget)
	require.NoError(t, err)
	var row string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "disk quota per run") {
			row = line
		}
	}
	require.Contains(t, row, "budget")
	require.Contains(t, row, "bounds the damage only after the fact")

	_, err = cli(t, "sandbox", "check", "--sandbox-disk-quota", "xfs")
	require.ErrorContains(t, err, "would refuse to start")
}

// TestSandboxCheckIDMapAndFilter: check says who the sandbox's root is on
// the host (the id that owns workspace files on disk) and that the system
// call filter is a deny-list.
func TestSandboxCheckIDMapAndFilter(t *testing.T) {
	t.Parallel()
	out, err := cli(t, "sandbox", "check", "-o", "json")
	require.NoError(t, err)
	var c sandboxCheck
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.Equal(t, "deny-list", c.Filter)
	want := os.Geteuid()
	if want == 0 {
		want = sandbox.DefaultHostID
	}
	require.Equal(t, want, c.IDMap.HostUID)
	table, err := cli(t, "sandbox", "check")
	require.NoError(t, err)
	require.Contains(t, table, "not an allowlist")
	if os.Geteuid() != 0 {
		return
	}
	require.Contains(t, table, "0 -> 65534:65534")
	out, err = cli(t, "sandbox", "check", "-o", "json", "--sandbox-host-uid", "100000", "--sandbox-host-gid", "100001")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.Equal(t, idMap{HostUID: 100000, HostGID: 100001}, c.IDMap)
	_, err = cli(t, "sandbox", "check", "--sandbox-host-uid", "-5")
	require.ErrorContains(t, err, "would refuse to start")
}
