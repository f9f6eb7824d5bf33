//go:build linux

package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wardenhq/warden/sandbox"
)

// Class: process mode. With consent, a root worker's process mode runs
// the tool as an unprivileged host id with no_new_privs and no
// capabilities: it cannot read the worker's memory or environment, write
// the worker's root-only files, or regain root through a setuid binary;
// its workspace files are the id's.
func TestHostileProcessModeAsRootDropsPrivileges(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("process mode as a non-root worker runs tools as the worker's uid")
	}
	r, err := sandbox.New(sandbox.Options{Mode: sandbox.ModeProcess, ProcessAsRoot: true})
	require.NoError(t, err)
	uid, gid := r.HostIDs()
	require.NotZero(t, uid)
	secret := filepath.Join(t.TempDir(), "worker-secret")
	require.NoError(t, os.WriteFile(secret, []byte("worker-secret"), 0o600))
	dir := t.TempDir()
	worker := os.Getpid()
	script := fmt.Sprintf(`
		echo "ids $(id -u) $(id -g) groups $(id -G)"
		grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd|CapAmb):' /proc/self/status
		cat /proc/%[1]d/environ >/dev/null 2>&1 && echo "ESCAPED: read the worker's environment"
		head -c 8 /proc/%[1]d/mem >/dev/null 2>&1 && echo "ESCAPED: read the worker's memory"
		cat %[2]s 2>/dev/null && echo "ESCAPED: read a root-only file"
		echo pwned 2>/dev/null >> %[2]s && echo "ESCAPED: wrote a root-only file"
		su -c 'echo ESCAPED: su gave root' root </dev/null 2>/dev/null
		echo made > made`, worker, secret)
	res, err := r.Run(context.Background(), sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c", script}})
	require.NoError(t, err)
	t.Logf("exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	out := string(res.Stdout)
	requireContained(t, res)
	require.Contains(t, out, fmt.Sprintf("ids %d %d groups %d\n", uid, gid, gid))
	for _, want := range []string{"NoNewPrivs:\t1", "CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000"} {
		require.Contains(t, out, want)
	}
	got, err := os.ReadFile(secret)
	require.NoError(t, err)
	require.Equal(t, "worker-secret", string(got))
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dir, "made"), &st))
	require.Equal(t, uint32(uid), st.Uid, "the tool's file is owned by host uid %d", st.Uid)
	require.False(t, strings.Contains(out, "ESCAPED"))
}
