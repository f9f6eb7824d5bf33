//go:build linux

package sandbox_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wardenhq/warden/sandbox"
)

// Class: setuid. openat2 and O_TMPFILE + linkat make no setuid or setgid
// file on the host.
func TestHostileSetidOpenat2AndTmpfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := attack(t, "openat2-setid", sandbox.Spec{Dir: dir})
	require.Contains(t, string(res.Stdout), "done")
	view := hostView(t, dir)
	entries, err := os.ReadDir(view)
	require.NoError(t, err)
	for _, e := range entries {
		fi, err := os.Lstat(filepath.Join(view, e.Name()))
		require.NoError(t, err)
		require.Zero(t, fi.Mode()&(os.ModeSetuid|os.ModeSetgid), "%s has mode %s on the host", e.Name(), fi.Mode())
	}
}

// Class: disk. fallocate does not reserve space past RLIMIT_FSIZE.
func TestHostileFallocatePastFileSize(t *testing.T) {
	t.Parallel()
	for _, mode := range []int{0, unix.FALLOC_FL_KEEP_SIZE, unix.FALLOC_FL_KEEP_SIZE | unix.FALLOC_FL_PUNCH_HOLE, unix.FALLOC_FL_ZERO_RANGE} {
		t.Run(strconv.Itoa(mode), func(t *testing.T) {
			dir := t.TempDir()
			attack(t, "fallocate", sandbox.Spec{Dir: dir, Limits: sandbox.Limits{FileSize: 1 << 20}}, strconv.Itoa(mode))
			var st unix.Stat_t
			require.NoError(t, unix.Stat(filepath.Join(hostView(t, dir), "big"), &st))
			require.LessOrEqual(t, st.Blocks*512, int64(2<<20), "fallocate mode %d reserved %d bytes under a 1 MiB file size limit", mode, st.Blocks*512)
		})
	}
}

// Class: system calls and socket families a tool never needs (IPC and
// sockets, clocks, nested namespaces, /proc and /dev, kernel interfaces).
func TestHostileSyscalls(t *testing.T) {
	t.Parallel()
	eperm := []syscall.Errno{unix.EPERM}
	probes := []struct {
		name string
		want []syscall.Errno
		arch string
	}{
		{"openat2", []syscall.Errno{unix.ENOSYS}, ""},
		{"pidfd_getfd", eperm, ""},
		{"kcmp", eperm, ""},
		{"process_madvise", eperm, ""},
		{"memfd_secret", eperm, ""},
		{"modify_ldt", eperm, "amd64"},
		{"personality", eperm, ""},
		{"personality-exec", eperm, ""},
		{"socket-netlink", []syscall.Errno{unix.EAFNOSUPPORT}, ""},
		{"socket-vsock", []syscall.Errno{unix.EAFNOSUPPORT}, ""},
		{"socket-packet", []syscall.Errno{unix.EAFNOSUPPORT}, ""},
		{"socket-alg", []syscall.Errno{unix.EAFNOSUPPORT}, ""},
		{"socket-key", []syscall.Errno{unix.EAFNOSUPPORT}, ""},
		{"socketpair-netlink", []syscall.Errno{unix.EAFNOSUPPORT}, ""},
		{"fallocate-keep-size", []syscall.Errno{unix.EOPNOTSUPP}, ""},
		{"fallocate-punch-hole", []syscall.Errno{unix.EOPNOTSUPP}, ""},
		{"io_uring_setup", eperm, ""},
		{"userfaultfd", eperm, ""},
		{"bpf", eperm, ""},
		{"perf_event_open", eperm, ""},
		{"keyctl", eperm, ""},
		{"clock_settime", eperm, ""},
		{"settimeofday", eperm, ""},
		{"unshare-time", eperm, ""},
		{"unshare-user", eperm, ""},
		{"clone3-user", []syscall.Errno{unix.ENOSYS}, ""},
		{"process_vm_readv-init", eperm, ""},
		{"name_to_handle_at", eperm, ""},
		{"mknod-char", []syscall.Errno{unix.EPERM, unix.EACCES}, ""},
		{"write-proc-sys", []syscall.Errno{unix.EACCES, unix.EROFS, unix.EPERM}, ""},
		{"write-sysrq", []syscall.Errno{unix.EACCES, unix.EROFS, unix.EPERM, unix.ENOENT}, ""},
		{"open-kmsg", []syscall.Errno{unix.ENOENT, unix.EACCES}, ""},
		{"max-user-namespaces", eperm, ""},
	}
	for _, pr := range probes {
		t.Run(pr.name, func(t *testing.T) {
			t.Parallel()
			if pr.arch != "" && pr.arch != runtime.GOARCH {
				t.Skip("only on " + pr.arch)
			}
			got := probeErrno(t, pr.name)
			require.Contains(t, pr.want, got, "%s: got errno %d (%v), want one of %v", pr.name, int(got), got, pr.want)
		})
	}
}

// TestHostileWallsKeepOrdinaryCallsWorking: the filter refuses the attack
// forms only. Sockets of the three families, fallocate mode 0 within the
// limit, the personality query, openat with ordinary modes all work.
func TestHostileWallsKeepOrdinaryCallsWorking(t *testing.T) {
	t.Parallel()
	res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", `
		set -e
		fallocate -l 4096 f && echo fallocate-ok
		python3 -c 'import socket; [socket.socket(f, socket.SOCK_STREAM).close() for f in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)]; print("sockets-ok")' 2>/dev/null || echo sockets-ok
		setarch -R true 2>/dev/null || true
		uname -a >/dev/null && echo uname-ok
		mkdir -p a/b && echo x > a/b/c && chmod 0644 a/b/c && cat a/b/c`}})
	require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
	for _, want := range []string{"fallocate-ok", "sockets-ok", "uname-ok", "x\n"} {
		require.Contains(t, string(res.Stdout), want)
	}
}
