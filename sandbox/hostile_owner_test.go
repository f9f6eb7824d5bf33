//go:build linux

package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wardenhq/warden/sandbox"
)

// Class: setuid / workspace ownership. As host root, what the program
// creates in the workspace belongs on disk to the sandbox's unprivileged
// host id, never to host root (a root-owned file host root later copies a
// binary into, or makes setuid, is a root program); the workspace is
// mounted nosuid and nodev inside. Both quota modes (a tmpfs per
// workspace, the host directory with the budget walk), and a workspace
// that files of an earlier, root-owned run are in.
func TestHostileWorkspaceFilesNotOwnedByHostRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("as a non-root worker the sandbox's root is the worker's uid")
	}
	script := `set -e
		echo x > file; mkdir dir; echo y > dir/inner; ln -s file link; mkfifo fifo
		chown 0:0 file; echo z >> old/kept
		grep " $PWD " /proc/self/mountinfo`
	for name, opts := range map[string]sandbox.Options{
		"tmpfs":         {DiskQuota: sandbox.QuotaTmpfs},
		"budget":        {DiskQuota: sandbox.QuotaBudget},
		"budget-subuid": {DiskQuota: sandbox.QuotaBudget, HostUID: 100000, HostGID: 100000},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := sandbox.New(opts)
			require.NoError(t, err)
			uid, gid := r.HostIDs()
			require.NotZero(t, uid)
			dir := t.TempDir()
			// A file of an earlier run, owned by host root, as runs before
			// this wall left them.
			res, err := r.Run(context.Background(), sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c", "mkdir old && echo a > old/kept"}})
			require.NoError(t, err)
			require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
			view := r.HostPath(dir)
			require.NoError(t, os.Lchown(filepath.Join(view, "old"), 0, 0))
			require.NoError(t, os.Lchown(filepath.Join(view, "old", "kept"), 0, 0))
			require.NoError(t, os.Lchown(view, 0, 0))

			res, err = r.Run(context.Background(), sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c", script}})
			require.NoError(t, err)
			t.Logf("exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
			require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
			opts := strings.Fields(string(res.Stdout))
			require.GreaterOrEqual(t, len(opts), 6, "mountinfo %q", res.Stdout)
			require.Contains(t, strings.Split(opts[5], ","), "nosuid", "the workspace is mounted %s", opts[5])
			require.Contains(t, strings.Split(opts[5], ","), "nodev", "the workspace is mounted %s", opts[5])
			for _, name := range []string{".", "file", "dir", "dir/inner", "link", "fifo", "old", "old/kept"} {
				var st unix.Stat_t
				require.NoError(t, unix.Lstat(filepath.Join(view, name), &st))
				require.Equal(t, uint32(uid), st.Uid, "%s is owned by host uid %d on disk", name, st.Uid)
				require.Equal(t, uint32(gid), st.Gid, "%s is owned by host gid %d on disk", name, st.Gid)
			}
		})
	}
}

// The hand-over follows no link the program planted, and refuses a
// directory that is not a workspace of this worker (another host user's
// file, a sticky directory such as /tmp), changing nothing.
func TestWorkspaceHandOverFollowsNoLinkAndRefusesForeignFiles(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only a root worker hands workspaces over")
	}
	r, err := sandbox.New(sandbox.Options{DiskQuota: sandbox.QuotaBudget})
	require.NoError(t, err)
	uid, _ := r.HostIDs()
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("host\n"), 0o600))
	dir := t.TempDir()
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, "planted")))
	require.NoError(t, os.Symlink(filepath.Dir(victim), filepath.Join(dir, "planted-dir")))
	res, err := r.Run(context.Background(), sandbox.Spec{Dir: dir, Argv: []string{"true"}})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dir, "planted"), &st))
	require.Equal(t, uint32(uid), st.Uid, "the link itself is handed over")
	for _, p := range []string{victim, filepath.Dir(victim)} {
		require.NoError(t, unix.Stat(p, &st))
		require.Zero(t, st.Uid, "%s, a link's target, was handed to uid %d", p, st.Uid)
	}

	foreign := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(foreign, "theirs"), nil, 0o600))
	require.NoError(t, os.Lchown(filepath.Join(foreign, "theirs"), 1234, 1234))
	_, err = r.Run(context.Background(), sandbox.Spec{Dir: foreign, Argv: []string{"true"}})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorContains(t, err, "holds a file of host uid 1234")
	require.NoError(t, unix.Stat(foreign, &st))
	require.Zero(t, st.Uid, "a refused workspace was changed")

	sticky := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(sticky, "shared"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(sticky, "shared"), 0o1777|os.ModeSticky))
	_, err = r.Run(context.Background(), sandbox.Spec{Dir: sticky, Argv: []string{"true"}})
	require.ErrorContains(t, err, "sticky directory")
}
