//go:build linux

package sandbox_test

// The hostile suite's probes of /proc and /dev, clocks, nested
// namespaces and IPC, and the controls: every probe run again on the host,
// outside any sandbox, where it must get another answer. A control that
// got the sandbox's answer would mean the test proves nothing about the
// walls (the host refuses the call anyway); it fails.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// errnoOf is the errno inside err (0 for nil).
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for {
		switch e := err.(type) {
		case syscall.Errno:
			return e
		case *os.PathError:
			err = e.Err
		case *os.SyscallError:
			err = e.Err
		case *net.OpError:
			err = e.Err
		default:
			return unix.EINVAL
		}
	}
}

func rawErrno(trap uintptr, a ...uintptr) syscall.Errno {
	var v [6]uintptr
	copy(v[:], a)
	_, _, e := unix.Syscall6(trap, v[0], v[1], v[2], v[3], v[4], v[5])
	return e
}

// probeMore runs the probes hostile_test.go's probe does not know. Outside
// (a control on the host) the calls that would change the host get
// arguments the kernel rejects only after the point the wall answers at.
func probeMore(name string, outside bool, args []string) syscall.Errno {
	arg := ""
	if len(args) > 0 && args[0] != "outside" {
		arg = args[0]
	}
	var noUser uintptr
	if outside {
		noUser = unix.MS_NOUSER // EINVAL before the mount's permission check
	}
	switch name {
	case "settimeofday-invalid":
		// Only the filter answers EPERM: the kernel checks the value first.
		tv := unix.Timeval{Sec: 1, Usec: -1}
		return rawErrno(unix.SYS_SETTIMEOFDAY, uintptr(unsafe.Pointer(&tv)), 0)
	case "adjtimex":
		var tx unix.Timex // modes 0: a read, allowed to anyone by the kernel
		return rawErrno(unix.SYS_ADJTIMEX, uintptr(unsafe.Pointer(&tx)))
	case "clock_adjtime":
		var tx unix.Timex
		return rawErrno(unix.SYS_CLOCK_ADJTIME, unix.CLOCK_REALTIME, uintptr(unsafe.Pointer(&tx)))
	case "unshare-mount":
		return rawErrno(unix.SYS_UNSHARE, unix.CLONE_NEWNS)
	case "unshare-net":
		runtime.LockOSThread() // the thread ends with the process
		return rawErrno(unix.SYS_UNSHARE, unix.CLONE_NEWNET)
	case "setns-net":
		fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return errnoOf(err)
		}
		runtime.LockOSThread()
		return errnoOf(unix.Setns(fd, unix.CLONE_NEWNET))
	case "chroot":
		return errnoOf(unix.Chroot("."))
	case "mount-proc":
		return errnoOf(unix.Mount("proc", ".", "proc", noUser, ""))
	case "remount-root":
		return errnoOf(unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|noUser, ""))
	case "mount-nouser":
		// Only the filter answers EPERM: the kernel refuses MS_NOUSER
		// with EINVAL before it looks at capabilities.
		return errnoOf(unix.Mount("proc", ".", "proc", unix.MS_NOUSER, ""))
	case "read-init-environ":
		// Inside: the init, non-dumpable. Outside: the test, a dumpable
		// process of the same user.
		target := 1
		if outside {
			target = os.Getppid()
		}
		_, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", target))
		return errnoOf(err)
	case "open-kcore":
		return openErrno("/proc/kcore")
	case "open-dev-mem":
		return openErrno("/dev/mem")
	case "open-sysfs":
		return openErrno("/sys/kernel")
	case "sysv-shm":
		// A segment the host made under key arg.
		var key int
		fmt.Sscanf(arg, "%d", &key)
		_, err := unix.SysvShmGet(key, 0, 0)
		return errnoOf(err)
	case "sysv-msg":
		var key int
		fmt.Sscanf(arg, "%d", &key)
		return rawErrno(unix.SYS_MSGGET, uintptr(key), 0)
	case "abstract-connect":
		// A host process listens on the abstract Unix socket arg.
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return errnoOf(err)
		}
		defer unix.Close(fd)
		return errnoOf(unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + arg}))
	}
	return unix.EINVAL
}

func openErrno(path string) syscall.Errno {
	f, err := os.Open(path)
	if err == nil {
		f.Close()
	}
	return errnoOf(err)
}

// probeOutside runs one probe as a plain child of the test, on the host.
func probeOutside(t *testing.T, name string, args ...string) syscall.Errno {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	argv := append(append([]string{attackArg, "probe", name}, args...), "outside")
	cmd := exec.Command(exe, argv...)
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	require.NoError(t, err, "probe %s outside: %s", name, out)
	var got int
	_, err = fmt.Sscanf(strings.TrimSpace(string(out)), "probe "+name+": %d", &got)
	require.NoError(t, err, "probe output %q", out)
	return syscall.Errno(got)
}

// TestHostileProbesReachTheKernelOutside: each probe of TestHostileSyscalls
// gets another answer on the host, so the sandbox's answer is its walls'.
// As root: several calls (chroot, setns, mknod) need it on the host.
func TestHostileProbesReachTheKernelOutside(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("the controls need root on the host")
	}
	for _, pr := range hostileProbes {
		t.Run(pr.name, func(t *testing.T) {
			t.Parallel()
			if pr.arch != "" && pr.arch != runtime.GOARCH {
				t.Skip("only on " + pr.arch)
			}
			if pr.needs != "" {
				if _, err := os.Stat(pr.needs); err != nil {
					t.Skipf("this host has no %s: the wall is the sandbox's view only", pr.needs)
				}
			}
			got := probeOutside(t, pr.name)
			t.Logf("%s on the host: errno %d (%v)", pr.name, int(got), got)
			if pr.absent != 0 && got == pr.absent {
				t.Skipf("this host's kernel lacks it (%v): the control proves nothing here", got)
			}
			require.NotContains(t, pr.want, got, "%s gets the sandbox's answer on the host too: the test does not show a wall", pr.name)
		})
	}
}

// Class: IPC. A SysV shared memory segment and a message queue the host
// made are not visible inside (the run's own IPC namespace); on the host
// the same probe finds them.
func TestHostileIPCSysV(t *testing.T) {
	t.Parallel()
	key := 0x5700_0000 + rand.IntN(1<<20)
	shm, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o666)
	require.NoError(t, err)
	t.Cleanup(func() { unix.SysvShmCtl(shm, unix.IPC_RMID, nil) })
	msq, _, errno := unix.Syscall(unix.SYS_MSGGET, uintptr(key), unix.IPC_CREAT|unix.IPC_EXCL|0o666, 0)
	require.Zero(t, errno)
	t.Cleanup(func() { unix.Syscall(unix.SYS_MSGCTL, msq, unix.IPC_RMID, 0) })
	k := fmt.Sprint(key)
	for _, name := range []string{"sysv-shm", "sysv-msg"} {
		require.Equal(t, unix.ENOENT, probeErrno(t, name, k), "%s: the host's object is reachable from the sandbox", name)
		if os.Geteuid() == 0 {
			require.Zero(t, probeOutside(t, name, k), "%s: the control does not find the host's object", name)
		}
	}
}

// Class: IPC. An abstract Unix socket the host listens on cannot be
// reached (the run's own network namespace; Landlock's scope where the
// ABI has it); on the host the same probe connects.
func TestHostileIPCAbstractSocket(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("warden-hostile-%d", rand.Int64())
	ln, err := net.Listen("unix", "@"+name)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	got := probeErrno(t, "abstract-connect", name)
	require.Contains(t, []syscall.Errno{unix.ECONNREFUSED, unix.EPERM}, got, "the host's abstract socket is reachable: errno %d (%v)", int(got), got)
	require.Zero(t, probeOutside(t, "abstract-connect", name), "the control does not reach the host's abstract socket")
}
