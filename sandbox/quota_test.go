//go:build linux

package sandbox_test

// Class: disk. A hostile program fills the run's workspace with many
// files each under RLIMIT_FSIZE, with empty files (inodes), and with
// fallocate; the run's quota stops it: ENOSPC inside the tool with the
// tmpfs quota, the budget error (and no further call) with the walk.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wardenhq/warden/sandbox"
)

// quotaMain runs the disk attacks; each prints what it wrote and the
// error that stopped it ("stopped: <nil>" when nothing did).
func quotaMain(name string, args []string) (int, bool) {
	n := func(i int) int { v, _ := strconv.Atoi(args[i]); return v }
	switch name {
	case "disk-fill":
		// args: files, MiB each (each under the file size limit).
		var total int64
		var stop error
		chunk := make([]byte, 1<<20)
		for i := 0; i < n(0) && stop == nil; i++ {
			f, err := os.Create(fmt.Sprintf("fill-%d", i))
			if err != nil {
				stop = err
				break
			}
			for j := 0; j < n(1); j++ {
				w, err := f.Write(chunk)
				total += int64(w)
				if err != nil {
					stop = err
					break
				}
			}
			if err := f.Close(); err != nil && stop == nil {
				stop = err
			}
		}
		fmt.Printf("wrote %d bytes; stopped: %v\n", total, stop)
	case "inode-flood":
		// args: empty files to create.
		created := 0
		var stop error
		for i := 0; i < n(0); i++ {
			f, err := os.Create(fmt.Sprintf("i%d", i))
			if err != nil {
				stop = err
				break
			}
			f.Close()
			created++
		}
		fmt.Printf("created %d files; stopped: %v\n", created, stop)
	case "fallocate-fill":
		// args: files, MiB reserved in each with fallocate mode 0.
		var total int64
		var stop error
		for i := 0; i < n(0); i++ {
			f, err := os.Create(fmt.Sprintf("fa-%d", i))
			if err != nil {
				stop = err
				break
			}
			err = unix.Fallocate(int(f.Fd()), 0, 0, int64(n(1))<<20)
			f.Close()
			if err != nil {
				stop = err
				break
			}
			total += int64(n(1)) << 20
		}
		fmt.Printf("reserved %d bytes; stopped: %v\n", total, stop)
	case "write-file":
		// args: name, content.
		fmt.Printf("write: %v\n", os.WriteFile(args[0], []byte(args[1]), 0o600))
	case "read-file":
		b, err := os.ReadFile(args[0])
		fmt.Printf("read %q: %v\n", b, err)
	case "plant-links":
		// args: link targets, planted as link-0, link-1, ... with a
		// directory of links below too.
		os.Mkdir("sub", 0o700)
		for i, target := range args {
			fmt.Printf("link %d: %v %v\n", i, os.Symlink(target, fmt.Sprintf("link-%d", i)), os.Symlink(target, fmt.Sprintf("sub/link-%d", i)))
		}
	case "rejoin-read":
		// Not sandboxed: a worker restarted on the host (a new process)
		// reads the run's file args[1] in its workspace args[0].
		r, err := sandbox.New(sandbox.Options{DiskQuota: sandbox.QuotaTmpfs})
		if err != nil {
			fmt.Println("new:", err)
			return 1, true
		}
		res, err := r.Run(context.Background(), sandbox.Spec{Dir: args[0], Argv: []string{"cat", args[1]}})
		fmt.Printf("rejoined %s: %q %v\n", r.Quota().Namespace, res.Stdout, err)
	default:
		return 0, false
	}
	return 0, true
}

// quotaModes runs f once per quota mode this host can test: tmpfs (as
// root, isolated) and the budget walk, forced.
func quotaModes(t *testing.T, f func(t *testing.T, r *sandbox.Runner)) {
	t.Helper()
	for _, mode := range []string{sandbox.QuotaTmpfs, sandbox.QuotaBudget} {
		t.Run(mode, func(t *testing.T) {
			r, err := sandbox.New(sandbox.Options{DiskQuota: mode})
			if mode == sandbox.QuotaTmpfs && os.Geteuid() != 0 {
				require.Error(t, err, "tmpfs needs a root worker")
				t.Skipf("tmpfs quota needs a root worker: %v", err)
			}
			require.NoError(t, err)
			require.Equal(t, mode, r.Quota().Mode)
			f(t, r)
		})
	}
}

// quotaRun runs one attack in r with the workspace dir.
func quotaRun(t *testing.T, r *sandbox.Runner, dir string, lim sandbox.Limits, name string, args ...string) (sandbox.Result, error) {
	t.Helper()
	res, err := r.Run(context.Background(), sandbox.Spec{Dir: dir, Argv: append([]string{sandbox.SelfExe, attackArg, name}, args...), Limits: lim})
	t.Logf("%s: exit %d err %v\n%s%s", name, res.ExitCode, err, res.Stdout, res.Stderr)
	return res, err
}

// written parses the first number the attack printed.
func written(t *testing.T, res sandbox.Result) int64 {
	t.Helper()
	f := strings.Fields(string(res.Stdout))
	require.GreaterOrEqual(t, len(f), 2, "attack output %q", res.Stdout)
	v, err := strconv.ParseInt(f[1], 10, 64)
	require.NoError(t, err, "attack output %q", res.Stdout)
	return v
}

// requireStopped holds one disk attack to its mode's wall: ENOSPC inside
// the tool with tmpfs, the budget error with the walk; and then, in the
// walk, every later call of the run refused before it starts.
func requireStopped(t *testing.T, r *sandbox.Runner, dir string, res sandbox.Result, err error) {
	t.Helper()
	require.True(t, res.DiskExceeded, "the Result must say the workspace reached its cap")
	switch r.Quota().Mode {
	case sandbox.QuotaTmpfs:
		require.NoError(t, err)
		require.Contains(t, string(res.Stdout), "no space left on device")
		require.Contains(t, string(res.Stderr), "warden sandbox: workspace disk limit")
		// Nothing of it reached the host's directory.
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, "the tool's files reached the host's workspace directory")
	case sandbox.QuotaBudget:
		require.ErrorIs(t, err, sandbox.ErrDiskQuota)
		require.ErrorIs(t, err, sandbox.ErrSandbox)
		require.ErrorContains(t, err, "left the workspace over its budget")
		var p interface{ Permanent() bool }
		require.ErrorAs(t, err, &p, "callers must be able to tell a retry is useless")
		require.True(t, p.Permanent())
		res2, err2 := quotaRun(t, r, dir, sandbox.Limits{DiskBytes: 4 << 20, DiskInodes: 200}, "write-file", "later", "x")
		require.ErrorIs(t, err2, sandbox.ErrDiskQuota)
		require.ErrorContains(t, err2, "no further call of this run may start")
		require.Empty(t, res2.Stdout, "the refused call ran")
		_, statErr := os.Stat(filepath.Join(dir, "later"))
		require.ErrorIs(t, statErr, os.ErrNotExist, "the refused call wrote to the workspace")
		// A restarted worker (no memory of the last call) walks and refuses too.
		again, err := sandbox.New(sandbox.Options{DiskQuota: sandbox.QuotaBudget})
		require.NoError(t, err)
		_, err3 := quotaRun(t, again, dir, sandbox.Limits{DiskBytes: 4 << 20, DiskInodes: 200}, "write-file", "later", "x")
		require.ErrorIs(t, err3, sandbox.ErrDiskQuota)
		require.ErrorContains(t, err3, "no further call of this run may start")
	}
}

func TestHostileDiskManyFilesUnderTheFileLimit(t *testing.T) {
	quotaModes(t, func(t *testing.T, r *sandbox.Runner) {
		dir := t.TempDir()
		// 16 files of 1 MiB, each under a 2 MiB RLIMIT_FSIZE, against a
		// 4 MiB workspace.
		lim := sandbox.Limits{FileSize: 2 << 20, DiskBytes: 4 << 20, DiskInodes: 200}
		res, err := quotaRun(t, r, dir, lim, "disk-fill", "16", "1")
		if r.Quota().Mode == sandbox.QuotaTmpfs {
			require.LessOrEqual(t, written(t, res), int64(4<<20), "the tool wrote past the workspace cap")
		}
		requireStopped(t, r, dir, res, err)
	})
}

func TestHostileDiskInodeFlood(t *testing.T) {
	quotaModes(t, func(t *testing.T, r *sandbox.Runner) {
		dir := t.TempDir()
		lim := sandbox.Limits{DiskBytes: 64 << 20, DiskInodes: 200}
		res, err := quotaRun(t, r, dir, lim, "inode-flood", "2000")
		if r.Quota().Mode == sandbox.QuotaTmpfs {
			require.LessOrEqual(t, written(t, res), int64(200), "the tool made more inodes than the cap")
		}
		requireStopped(t, r, dir, res, err)
	})
}

func TestHostileDiskFallocate(t *testing.T) {
	quotaModes(t, func(t *testing.T, r *sandbox.Runner) {
		dir := t.TempDir()
		lim := sandbox.Limits{FileSize: 2 << 20, DiskBytes: 4 << 20, DiskInodes: 200}
		res, err := quotaRun(t, r, dir, lim, "fallocate-fill", "16", "1")
		if r.Quota().Mode == sandbox.QuotaTmpfs {
			require.LessOrEqual(t, written(t, res), int64(4<<20), "fallocate reserved past the workspace cap")
		}
		requireStopped(t, r, dir, res, err)
	})
}

// A run's files persist between its calls, and with the tmpfs across a
// worker restart (a new Runner joins the kept workspace namespace).
func TestWorkspacePersistsBetweenCalls(t *testing.T) {
	quotaModes(t, func(t *testing.T, r *sandbox.Runner) {
		dir := t.TempDir()
		res, err := quotaRun(t, r, dir, sandbox.Limits{}, "write-file", "notes.txt", "kept")
		require.NoError(t, err)
		require.Contains(t, string(res.Stdout), "write: <nil>")
		res, err = quotaRun(t, r, dir, sandbox.Limits{}, "read-file", "notes.txt")
		require.NoError(t, err)
		require.Contains(t, string(res.Stdout), `read "kept": <nil>`)
		got, err := os.ReadFile(filepath.Join(r.HostPath(dir), "notes.txt"))
		require.NoError(t, err, "the host reads the workspace through HostPath")
		require.Equal(t, "kept", string(got))

		if r.Quota().Mode == sandbox.QuotaTmpfs {
			// A restarted worker is a new process: it joins the kept namespace.
			out, err := exec.Command(os.Args[0], attackArg, "rejoin-read", dir, "notes.txt").CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), `: "kept" <nil>`, "a restarted worker lost the run's files")
		}
	})
}

// Removing a workspace follows none of the links the tool planted (to /,
// to a host directory, to a host file), and with the tmpfs frees it.
func TestRemoveWorkspaceFollowsNoPlantedLink(t *testing.T) {
	quotaModes(t, func(t *testing.T, r *sandbox.Runner) {
		outside := t.TempDir()
		sentinel := filepath.Join(outside, "sentinel")
		require.NoError(t, os.WriteFile(sentinel, []byte("intact"), 0o600))
		dir := filepath.Join(t.TempDir(), "ws")
		require.NoError(t, os.Mkdir(dir, 0o750))
		res, err := quotaRun(t, r, dir, sandbox.Limits{}, "plant-links", "/", outside, sentinel, "..")
		require.NoError(t, err)
		require.NotContains(t, string(res.Stdout), "permission denied")
		if r.Quota().Mode == sandbox.QuotaBudget {
			// The host sees the links; plant more from the host side too.
			require.NoError(t, os.Symlink(outside, filepath.Join(dir, "host-link")))
		}
		require.NoError(t, r.RemoveWorkspace(dir))
		_, err = os.Lstat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
		_, err = os.Lstat(r.HostPath(dir))
		require.True(t, errors.Is(err, os.ErrNotExist), "the workspace's tmpfs is still reachable: %v", err)
		got, err := os.ReadFile(sentinel)
		require.NoError(t, err, "removing the workspace removed a file outside it")
		require.Equal(t, "intact", string(got))
		_, err = os.Stat("/usr/bin")
		require.NoError(t, err)
		// The package function as well, on a workspace that is a link itself.
		link := filepath.Join(t.TempDir(), "ws-link")
		require.NoError(t, os.Symlink(outside, link))
		require.NoError(t, sandbox.RemoveWorkspace(link))
		_, err = os.Stat(sentinel)
		require.NoError(t, err, "removing a workspace that is a link removed its target's files")
	})
}

func TestQuotaModeChoice(t *testing.T) {
	_, err := sandbox.New(sandbox.Options{DiskQuota: "quota"})
	require.ErrorContains(t, err, `unknown disk quota mode "quota"`)
	r, err := sandbox.New(sandbox.Options{DiskQuota: sandbox.QuotaNone})
	require.NoError(t, err)
	require.Equal(t, sandbox.QuotaNone, r.Quota().Mode)
	r, err = sandbox.New(sandbox.Options{})
	require.NoError(t, err)
	if os.Geteuid() == 0 {
		require.Equal(t, sandbox.QuotaTmpfs, r.Quota().Mode, "a root isolated worker gets the tmpfs quota: %s", r.Quota())
		require.Equal(t, sandbox.DefaultWorkspaceNamespace, r.Quota().Namespace)
	} else {
		require.Equal(t, sandbox.QuotaBudget, r.Quota().Mode)
	}
	require.Equal(t, int64(sandbox.DefaultDiskBytes), r.Quota().Bytes)
	require.Equal(t, int64(sandbox.DefaultDiskInodes), r.Quota().Inodes)
	// Where the workspace namespace cannot be kept: the walk, saying why;
	// tmpfs asked for explicitly fails.
	r, err = sandbox.New(sandbox.Options{WorkspaceNamespace: "/proc/warden/workspaces.mntns"})
	require.NoError(t, err)
	require.Equal(t, sandbox.QuotaBudget, r.Quota().Mode)
	if os.Geteuid() == 0 {
		require.Contains(t, r.Quota().String(), "/proc/warden")
	}
	_, err = sandbox.New(sandbox.Options{WorkspaceNamespace: "/proc/warden/workspaces.mntns", DiskQuota: sandbox.QuotaTmpfs})
	require.ErrorContains(t, err, "disk quota tmpfs is not usable")
	// Process mode runs tools in the host's mount namespace: the walk.
	p, err := sandbox.New(sandbox.Options{Mode: sandbox.ModeProcess, ProcessAsRoot: true})
	require.NoError(t, err)
	require.Equal(t, sandbox.QuotaBudget, p.Quota().Mode)
	require.Contains(t, p.Quota().String(), "process mode")
	_, err = sandbox.New(sandbox.Options{Mode: sandbox.ModeProcess, ProcessAsRoot: true, DiskQuota: sandbox.QuotaTmpfs})
	require.ErrorContains(t, err, "disk quota tmpfs is not usable")
}

// A workspace that already holds files (a run from before the tmpfs
// quota) keeps them visible and is budgeted instead; negative caps mean
// none.
func TestQuotaOldWorkspaceIsBudgeted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the tmpfs quota needs a root worker")
	}
	r, err := sandbox.New(sandbox.Options{DiskQuota: sandbox.QuotaTmpfs})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.txt"), []byte("old"), 0o600))
	res, err := quotaRun(t, r, dir, sandbox.Limits{DiskInodes: 200}, "read-file", "old.txt")
	require.NoError(t, err)
	require.Contains(t, string(res.Stdout), `read "old": <nil>`)
	res, err = quotaRun(t, r, dir, sandbox.Limits{DiskInodes: 200}, "inode-flood", "300")
	require.ErrorIs(t, err, sandbox.ErrDiskQuota)
	require.ErrorContains(t, err, "budgeted, not a tmpfs: the workspace holds files from before the tmpfs quota")
	require.Contains(t, string(res.Stdout), "created 300 files")
	res, err = quotaRun(t, r, t.TempDir(), sandbox.Limits{DiskInodes: -1, DiskBytes: -1}, "inode-flood", "300")
	require.NoError(t, err)
	require.False(t, res.DiskExceeded)
	require.Contains(t, string(res.Stdout), "created 300 files; stopped: <nil>")
}

// hostView is where the test reads what a run wrote in the workspace dir
// (through the workspace mount namespace with the tmpfs quota).
func hostView(t *testing.T, dir string) string {
	t.Helper()
	return newRunner(t).HostPath(dir)
}
