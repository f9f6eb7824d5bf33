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
// TestHostileProbesReachTheKernelOutside runs the same probes on the host
// and sees other answers: the sandbox's walls make these.
func TestHostileSyscalls(t *testing.T) {
	t.Parallel()
	for _, pr := range hostileProbes {
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

// hostileProbe is one probe of the suite: its class (docs/sandbox.md)
// and the answers the walls may give.
type hostileProbe struct {
	name  string
	class string
	want  []syscall.Errno
	arch  string
	// needs is a host path the control needs (the host lacks the device
	// or file otherwise, and its answer proves nothing).
	needs string
	// absent is the errno the control gets where the host kernel lacks
	// the feature (a socket family not built): the control is skipped.
	absent syscall.Errno
}

var (
	eperm  = []syscall.Errno{unix.EPERM}
	noFam  = []syscall.Errno{unix.EAFNOSUPPORT}
	refuse = []syscall.Errno{unix.EACCES, unix.EROFS, unix.EPERM}
)

var hostileProbes = []hostileProbe{
	{name: "openat2", class: "setuid", want: []syscall.Errno{unix.ENOSYS}},
	{name: "pidfd_getfd", class: "descriptors", want: eperm},
	{name: "kcmp", class: "descriptors", want: eperm},
	{name: "process_madvise", class: "kernel", want: eperm},
	{name: "memfd_secret", class: "kernel", want: eperm},
	{name: "modify_ldt", class: "kernel", want: eperm, arch: "amd64"},
	{name: "personality", class: "kernel", want: eperm},
	{name: "personality-exec", class: "kernel", want: eperm},
	{name: "socket-netlink", class: "ipc", want: noFam, absent: unix.EAFNOSUPPORT},
	{name: "socket-vsock", class: "ipc", want: noFam, absent: unix.EAFNOSUPPORT},
	{name: "socket-packet", class: "ipc", want: noFam, absent: unix.EAFNOSUPPORT},
	{name: "socket-alg", class: "ipc", want: noFam, absent: unix.EAFNOSUPPORT},
	{name: "socket-key", class: "ipc", want: noFam, absent: unix.EAFNOSUPPORT},
	{name: "socketpair-netlink", class: "ipc", want: noFam, absent: unix.EAFNOSUPPORT},
	{name: "fallocate-keep-size", class: "disk", want: []syscall.Errno{unix.EOPNOTSUPP}},
	{name: "fallocate-punch-hole", class: "disk", want: []syscall.Errno{unix.EOPNOTSUPP}},
	{name: "io_uring_setup", class: "kernel", want: eperm},
	{name: "userfaultfd", class: "kernel", want: eperm},
	{name: "bpf", class: "kernel", want: eperm},
	{name: "perf_event_open", class: "kernel", want: eperm},
	{name: "keyctl", class: "kernel", want: eperm},
	{name: "clock_settime", class: "clocks", want: eperm},
	{name: "settimeofday", class: "clocks", want: eperm},
	{name: "settimeofday-invalid", class: "clocks", want: eperm},
	{name: "adjtimex", class: "clocks", want: eperm},
	{name: "clock_adjtime", class: "clocks", want: eperm},
	{name: "unshare-time", class: "namespaces", want: eperm},
	{name: "unshare-user", class: "namespaces", want: eperm},
	{name: "unshare-mount", class: "namespaces", want: eperm},
	{name: "unshare-net", class: "namespaces", want: eperm},
	{name: "clone3-user", class: "namespaces", want: []syscall.Errno{unix.ENOSYS}},
	{name: "setns-net", class: "namespaces", want: eperm},
	{name: "chroot", class: "namespaces", want: eperm},
	{name: "mount-proc", class: "namespaces", want: eperm},
	{name: "remount-root", class: "namespaces", want: eperm},
	{name: "mount-nouser", class: "namespaces", want: eperm},
	{name: "max-user-namespaces", class: "namespaces", want: eperm},
	{name: "process_vm_readv-init", class: "descriptors", want: eperm},
	{name: "name_to_handle_at", class: "kernel", want: eperm},
	{name: "mknod-char", class: "proc-dev", want: []syscall.Errno{unix.EPERM, unix.EACCES}},
	{name: "write-proc-sys", class: "proc-dev", want: refuse},
	{name: "write-sysrq", class: "proc-dev", want: append([]syscall.Errno{unix.ENOENT}, refuse...), needs: "/proc/sysrq-trigger"},
	{name: "open-kmsg", class: "proc-dev", want: []syscall.Errno{unix.ENOENT, unix.EACCES}, needs: "/dev/kmsg"},
	{name: "read-init-environ", class: "proc-dev", want: []syscall.Errno{unix.EACCES, unix.EPERM}},
	{name: "open-kcore", class: "proc-dev", want: []syscall.Errno{unix.ENOENT, unix.EACCES, unix.EPERM}, needs: "/proc/kcore"},
	{name: "open-dev-mem", class: "proc-dev", want: []syscall.Errno{unix.ENOENT, unix.EACCES, unix.EPERM}, needs: "/dev/mem"},
	{name: "open-sysfs", class: "proc-dev", want: []syscall.Errno{unix.ENOENT, unix.EACCES}},
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
