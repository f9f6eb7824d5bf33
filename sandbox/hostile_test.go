//go:build linux

package sandbox_test

// The hostile suite: attacks of issue 19, organised by class, each run as
// a real program inside an isolated sandbox (this test binary, through
// hostileMain) and judged from the host's side or by the exact error the
// wall returns. A probe prints "probe NAME: ERRNO" (0 when the call
// worked); the test holds the errno to the set the wall may answer.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wardenhq/warden/sandbox"
)

// hostileMain runs the attacks of this file; ok is false for a name it
// does not know.
func hostileMain(name string, args []string) (code int, ok bool) {
	report := func(step string, err error) {
		if err == nil {
			fmt.Printf("ESCAPED: %s\n", step)
		} else {
			fmt.Printf("contained: %s: %v\n", step, err)
		}
	}
	switch name {
	case "pidfd-steal":
		// Take every descriptor PID 1 (the init) holds and write to it.
		// pidfd_open itself is harmless (a handle to signal or wait on).
		pfd, err := unix.PidfdOpen(1, 0)
		if err != nil {
			fmt.Printf("contained: pidfd_open(1): %v\n", err)
			return 0, true
		}
		for fd := 0; fd < 256; fd++ {
			nfd, err := unix.PidfdGetfd(pfd, fd, 0)
			if err != nil {
				continue
			}
			report(fmt.Sprintf("pidfd_getfd(init, %d)", fd), nil)
			unix.Write(nfd, []byte("pwned\n"))
		}
		fmt.Println("contained: no descriptor of the init taken")
	case "forge-status":
		// Write a success report on every descriptor stolen from the init,
		// then fail: the worker must report the failure.
		if pfd, err := unix.PidfdOpen(1, 0); err == nil {
			for fd := 3; fd < 64; fd++ {
				if nfd, err := unix.PidfdGetfd(pfd, fd, 0); err == nil {
					unix.Write(nfd, []byte(`{"stage":"exited","exit_code":0}`))
				}
			}
		}
		// Through /proc as well.
		for fd := 3; fd < 64; fd++ {
			if f, err := os.OpenFile(fmt.Sprintf("/proc/1/fd/%d", fd), os.O_WRONLY, 0); err == nil {
				f.Write([]byte(`{"stage":"setup","error":"forged"}`))
				f.Close()
				report(fmt.Sprintf("open /proc/1/fd/%d", fd), nil)
			}
		}
		return 3, true
	case "init-proc":
		for _, p := range []string{"/proc/1/mem", "/proc/1/environ", "/proc/1/fd/4", "/proc/1/root/etc/passwd", "/proc/1/cwd/."} {
			f, err := os.Open(p)
			if err == nil {
				f.Close()
			}
			report("open "+p, err)
		}
		// Listing /proc/1/fd shows numbers only; where they lead must not
		// be readable.
		for fd := 0; fd < 64; fd++ {
			if target, err := os.Readlink(fmt.Sprintf("/proc/1/fd/%d", fd)); err == nil {
				report(fmt.Sprintf("readlink /proc/1/fd/%d = %s", fd, target), nil)
			}
		}
		for _, p := range []string{"/proc/1/exe", "/proc/1/root", "/proc/1/cwd"} {
			_, err := os.Readlink(p)
			report("readlink "+p, err)
		}
	case "init-threads":
		// Every thread of the init: no_new_privs, seccomp, and with
		// args[0] == "caps" no capabilities.
		tasks, err := os.ReadDir("/proc/1/task")
		if err != nil {
			report("list /proc/1/task (cannot judge)", nil)
			return 0, true
		}
		for _, task := range tasks {
			raw, err := os.ReadFile("/proc/1/task/" + task.Name() + "/status")
			if err != nil {
				continue
			}
			s := string(raw)
			if strings.Contains(s, "NoNewPrivs:\t0") {
				report("init thread "+task.Name()+" without no_new_privs", nil)
			}
			if strings.Contains(s, "Seccomp:\t0") {
				report("init thread "+task.Name()+" without seccomp", nil)
			}
			if len(args) > 0 && args[0] == "caps" && !strings.Contains(s, "CapEff:\t0000000000000000") {
				report("init thread "+task.Name()+" with capabilities", nil)
			}
		}
		fmt.Printf("contained: %d init threads checked\n", len(tasks))
	case "signal-init":
		for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGQUIT, unix.SIGHUP, unix.SIGINT, unix.SIGUSR1, unix.SIGPIPE} {
			unix.Kill(1, sig)
		}
		time.Sleep(300 * time.Millisecond)
		fmt.Println("alive after signalling the init")
	case "openat2-setid":
		how := &unix.OpenHow{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o4755}
		fd, err := unix.Openat2(unix.AT_FDCWD, "suid-openat2", how)
		if err == nil {
			unix.Close(fd)
		}
		how = &unix.OpenHow{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o2755}
		if fd, err := unix.Openat2(unix.AT_FDCWD, "sgid-openat2", how); err == nil {
			unix.Close(fd)
		}
		// O_TMPFILE with setid bits, then a name for it.
		for _, mode := range []uint64{0o4755, 0o2755} {
			how = &unix.OpenHow{Flags: unix.O_TMPFILE | unix.O_WRONLY, Mode: mode}
			if fd, err := unix.Openat2(unix.AT_FDCWD, ".", how); err == nil {
				unix.Linkat(fd, "", unix.AT_FDCWD, fmt.Sprintf("tmpfile-openat2-%o", mode), unix.AT_EMPTY_PATH)
				unix.Close(fd)
			}
			if fd, err := unix.Open(".", unix.O_TMPFILE|unix.O_WRONLY, uint32(mode)); err == nil {
				unix.Linkat(fd, "", unix.AT_FDCWD, fmt.Sprintf("tmpfile-openat-%o", mode), unix.AT_EMPTY_PATH)
				unix.Close(fd)
			}
		}
		fmt.Println("done")
	case "fallocate":
		// args[0]: the fallocate mode; reserve 512 MiB in one call.
		mode, _ := strconv.Atoi(args[0])
		f, err := os.Create("big")
		if err != nil {
			report("create", err)
			return 0, true
		}
		err = unix.Fallocate(int(f.Fd()), uint32(mode), 0, 512<<20)
		f.Close()
		fmt.Printf("fallocate mode %d: %v\n", mode, err)
	case "cpu-spin":
		// Four busy threads for a second of wall time; print the CPU the
		// process used.
		stop := time.Now().Add(time.Second)
		done := make(chan struct{})
		for range 4 {
			go func() {
				for time.Now().Before(stop) {
				}
				done <- struct{}{}
			}()
		}
		for range 4 {
			<-done
		}
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		fmt.Printf("cpu-ms %d\n", cpu.Milliseconds())
	case "probe":
		errno := probe(args[0], args[1:])
		fmt.Printf("probe %s: %d\n", args[0], int(errno))
	default:
		return quotaMain(name, args)
	}
	return 0, true
}

// probe issues one system call a wall should refuse and returns its errno.
// With "outside" among args it runs as a control on the host (see
// TestHostileProbesReachTheKernelOutside): the calls that would change
// the host take arguments the kernel rejects after the point the wall
// answers at.
func probe(name string, args []string) syscall.Errno {
	outside := slices.Contains(args, "outside")
	raw := func(trap uintptr, a ...uintptr) syscall.Errno {
		var v [6]uintptr
		copy(v[:], a)
		_, _, e := unix.Syscall6(trap, v[0], v[1], v[2], v[3], v[4], v[5])
		return e
	}
	sock := func(family, typ, proto int) syscall.Errno {
		fd, err := unix.Socket(family, typ, proto)
		if err != nil {
			return err.(syscall.Errno)
		}
		unix.Close(fd)
		return 0
	}
	errOf := func(err error) syscall.Errno {
		if err == nil {
			return 0
		}
		var e syscall.Errno
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		if se, ok := err.(*os.SyscallError); ok {
			err = se.Err
		}
		if errno, ok := err.(syscall.Errno); ok {
			return errno
		}
		return e
	}
	self := os.Getpid()
	buf := make([]byte, 4096)
	p := uintptr(unsafe.Pointer(&buf[0]))
	switch name {
	case "openat2":
		how := unix.OpenHow{Flags: unix.O_RDONLY}
		_, err := unix.Openat2(unix.AT_FDCWD, "/", &how)
		return errOf(err)
	case "pidfd_getfd":
		pfd, err := unix.PidfdOpen(self, 0)
		if err != nil {
			return errOf(err)
		}
		_, err = unix.PidfdGetfd(pfd, 1, 0)
		return errOf(err)
	case "kcmp":
		return raw(unix.SYS_KCMP, uintptr(self), uintptr(self), 0 /* KCMP_FILE */, 0, 1)
	case "process_madvise":
		pfd, err := unix.PidfdOpen(self, 0)
		if err != nil {
			return errOf(err)
		}
		iov := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
		return raw(unix.SYS_PROCESS_MADVISE, uintptr(pfd), uintptr(unsafe.Pointer(&iov)), 1, unix.MADV_COLD, 0)
	case "memfd_secret":
		return raw(unix.SYS_MEMFD_SECRET, 0)
	case "modify_ldt":
		return raw(154 /* SYS_MODIFY_LDT, amd64 */, 0, p, uintptr(len(buf)))
	case "personality":
		return raw(unix.SYS_PERSONALITY, 0x0040000 /* ADDR_NO_RANDOMIZE */)
	case "personality-exec":
		return raw(unix.SYS_PERSONALITY, 0x0400000 /* READ_IMPLIES_EXEC */)
	case "socket-netlink":
		return sock(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	case "socket-vsock":
		return sock(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	case "socket-packet":
		return sock(unix.AF_PACKET, unix.SOCK_DGRAM, 0)
	case "socket-alg":
		return sock(unix.AF_ALG, unix.SOCK_SEQPACKET, 0)
	case "socket-key":
		return sock(unix.AF_KEY, unix.SOCK_RAW, 2)
	case "socketpair-netlink":
		var fds [2]int32
		return raw(unix.SYS_SOCKETPAIR, unix.AF_NETLINK, unix.SOCK_RAW, 0, uintptr(unsafe.Pointer(&fds[0])))
	case "fallocate-keep-size":
		f, err := os.Create("f")
		if err != nil {
			return errOf(err)
		}
		defer f.Close()
		return errOf(unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 1<<20))
	case "fallocate-punch-hole":
		f, err := os.Create("f")
		if err != nil {
			return errOf(err)
		}
		defer f.Close()
		return errOf(unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 1<<20))
	case "io_uring_setup":
		return raw(unix.SYS_IO_URING_SETUP, 1, p)
	case "userfaultfd":
		return raw(unix.SYS_USERFAULTFD, 0)
	case "bpf":
		return raw(unix.SYS_BPF, 0, p, 48)
	case "perf_event_open":
		return raw(unix.SYS_PERF_EVENT_OPEN, p, 0, ^uintptr(0), ^uintptr(0), 0)
	case "keyctl":
		return raw(unix.SYS_KEYCTL, 0 /* KEYCTL_GET_KEYRING_ID */, ^uintptr(3), 0)
	case "clock_settime":
		ts := unix.Timespec{Sec: 1}
		if outside {
			ts.Nsec = -1 // EINVAL, checked before the capability
		}
		return raw(unix.SYS_CLOCK_SETTIME, unix.CLOCK_REALTIME, uintptr(unsafe.Pointer(&ts)))
	case "settimeofday":
		tv := unix.Timeval{Sec: 1}
		if outside {
			tv.Usec = -1
		}
		return raw(unix.SYS_SETTIMEOFDAY, uintptr(unsafe.Pointer(&tv)), 0)
	case "unshare-time":
		return raw(unix.SYS_UNSHARE, unix.CLONE_NEWTIME)
	case "unshare-user":
		return raw(unix.SYS_UNSHARE, unix.CLONE_NEWUSER)
	case "clone3-user":
		// struct clone_args, version 0: flags, pidfd, child_tid,
		// parent_tid, exit_signal, stack, stack_size, tls.
		ca := [8]uint64{unix.CLONE_NEWUSER, 0, 0, 0, uint64(unix.SIGCHLD)}
		size := unsafe.Sizeof(ca)
		if outside {
			size = 8 // EINVAL: never a real fork of a Go process
		}
		return raw(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&ca)), size)
	case "process_vm_readv-init":
		// Outside: the test process (PID 1 of the host may be another
		// user namespace's, refused for that reason).
		target := uintptr(1)
		if outside {
			target = uintptr(os.Getppid())
		}
		local := unix.Iovec{Base: &buf[0], Len: 8}
		remote := unix.RemoteIovec{Base: p, Len: 8}
		return raw(unix.SYS_PROCESS_VM_READV, target, uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote)), 1, 0)
	case "name_to_handle_at":
		fd := -100 // AT_FDCWD
		return raw(unix.SYS_NAME_TO_HANDLE_AT, uintptr(fd), 0, p, p, 0)
	case "mknod-char":
		return errOf(unix.Mknod("null2", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	case "write-proc-sys":
		value := []byte("pwned")
		if outside {
			value, _ = os.ReadFile("/proc/sys/kernel/hostname") // the same name back
		}
		return errOf(os.WriteFile("/proc/sys/kernel/hostname", value, 0))
	case "write-sysrq":
		cmd := []byte("h")
		if outside {
			cmd = nil // an empty write: opened for writing, nothing triggered
		}
		return errOf(os.WriteFile("/proc/sysrq-trigger", cmd, 0))
	case "open-kmsg":
		f, err := os.Open("/dev/kmsg")
		if err == nil {
			f.Close()
		}
		return errOf(err)
	case "max-user-namespaces":
		raw, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
		if err != nil {
			return errOf(err)
		}
		if strings.TrimSpace(string(raw)) != "0" {
			return 0
		}
		return unix.EPERM
	}
	return probeMore(name, outside, args)
}

// probeErrno runs one probe in an isolated sandbox and returns its errno.
func probeErrno(t *testing.T, name string, args ...string) syscall.Errno {
	t.Helper()
	res := attack(t, "probe", sandbox.Spec{}, append([]string{name}, args...)...)
	var got int
	_, err := fmt.Sscanf(strings.TrimSpace(string(res.Stdout)), "probe "+name+": %d", &got)
	require.NoError(t, err, "probe output %q", res.Stdout)
	return syscall.Errno(got)
}

// Class: descriptors. The init (PID 1 of the run) holds the status pipe
// and the worker's executable; the program must get none of its
// descriptors, by pidfd_getfd or through /proc.
func TestHostileDescriptorsPidfdGetfd(t *testing.T) {
	t.Parallel()
	attack(t, "pidfd-steal", sandbox.Spec{})
}

func TestHostileDescriptorsInheritedByTheInit(t *testing.T) {
	// Not parallel: the leaked descriptor would reach other tests' children.
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("intact\n"), 0o666))
	f, err := os.OpenFile(victim, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd())) // without close-on-exec
	require.NoError(t, err)
	defer unix.Close(fd)
	attack(t, "pidfd-steal", sandbox.Spec{})
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "intact\n", string(got), "a host file was written through a descriptor of the init")
}

func TestHostileDescriptorsInitProc(t *testing.T) {
	t.Parallel()
	attack(t, "init-proc", sandbox.Spec{})
}

// Class: status integrity. The program cannot make the worker report an
// outcome it did not have.
func TestHostileStatusForged(t *testing.T) {
	t.Parallel()
	res, err := newRunner(t).Run(context.Background(), sandbox.Spec{Dir: t.TempDir(), Argv: []string{sandbox.SelfExe, attackArg, "forge-status"}})
	require.NoError(t, err, "a forged status must not break the run's report")
	t.Logf("exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	requireContained(t, res)
	require.Equal(t, 3, res.ExitCode, "the worker reported an exit the program did not have")
	require.NotContains(t, string(res.Stderr), "forged")
}

// Class: threads of the init. Every thread carries no_new_privs and the
// filter; the dedicated init (no cgo) also drops every capability on every
// thread.
func TestHostileInitThreads(t *testing.T) {
	t.Parallel()
	attack(t, "init-threads", sandbox.Spec{})
}

func TestHostileInitThreadsDedicatedInit(t *testing.T) {
	t.Parallel()
	r, err := sandbox.New(sandbox.Options{SelfPath: dedicatedInit(t)})
	require.NoError(t, err)
	res, err := r.Run(context.Background(), sandbox.Spec{Dir: t.TempDir(), Argv: []string{sandbox.SelfExe, attackArg, "init-threads", "caps"}})
	require.NoError(t, err)
	t.Logf("exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	require.Contains(t, string(res.Stdout), "init threads checked")
	requireContained(t, res)
}

// Class: signals to the init. TERM, QUIT, HUP, INT, USR1 and PIPE from
// the program neither end the init nor make it print anything.
func TestHostileSignalsToTheInit(t *testing.T) {
	t.Parallel()
	res := attack(t, "signal-init", sandbox.Spec{})
	require.Equal(t, 0, res.ExitCode)
	require.Contains(t, string(res.Stdout), "alive after signalling the init")
	require.NotContains(t, string(res.Stderr), "goroutine")
}

// Class: CPU. Four spinning threads of one run get the run's CPU quota
// (half a core here), not every core of the host.
func TestHostileCPUSpinnersShareTheRunsQuota(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	if !r.Cgroup().CPU {
		t.Skipf("no cpu cgroup on this host (%s): CPU is bounded per process only", r.Cgroup())
	}
	res, err := r.Run(context.Background(), sandbox.Spec{Dir: t.TempDir(), Argv: []string{sandbox.SelfExe, attackArg, "cpu-spin"}, Limits: sandbox.Limits{CPUs: 0.5}})
	require.NoError(t, err)
	t.Logf("exit %d in %s\n%s%s", res.ExitCode, res.Duration, res.Stdout, res.Stderr)
	require.Equal(t, 0, res.ExitCode)
	var ms int64
	_, err = fmt.Sscanf(strings.TrimSpace(string(res.Stdout)), "cpu-ms %d", &ms)
	require.NoError(t, err)
	// Half a core over the run's wall time, with room for one period of
	// burst and the runtime's start: far below the 2+ s four threads take
	// unthrottled.
	limit := res.Duration.Milliseconds()/2 + 300
	require.LessOrEqual(t, ms, limit, "the run used more CPU than its quota allows")
	// The four threads spin for a second: a run that got its whole quota
	// (half a core: 500 ms) was throttled, and the Result must say so. On a
	// host too busy to give it that much, nothing throttled it.
	if ms >= 450 {
		require.True(t, res.CPUThrottled, "the Result must say the run was throttled")
	} else {
		t.Logf("the host gave the run %d ms of its 500 ms quota: throttling not exercised", ms)
	}
}

// A run without a CPU cap (CPUs < 0) still runs where the cap is v1's.
func TestCPUsNegativeMeansNoCap(t *testing.T) {
	t.Parallel()
	res, err := newRunner(t).Run(context.Background(), sandbox.Spec{Dir: t.TempDir(), Argv: []string{"true"}, Limits: sandbox.Limits{CPUs: -1}})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
	require.False(t, res.CPUThrottled)
}

// Class: limits meant for the program starve the init. The init (PID 1,
// a Go runtime with over a gigabyte of address space reserved) must not
// run under the program's address-space, process or file limits: under
// them it cannot start a thread or grow its heap, dies mid-run and the
// run's report is lost. Judged from inside: /proc/1/limits against
// /proc/self/limits.
func TestHostileLimitsBindOnlyTheProgram(t *testing.T) {
	t.Parallel()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "cat /proc/1/limits; echo ===; cat /proc/self/limits"},
		Limits: sandbox.Limits{AddressSpace: 64 << 20, Processes: 16, FileSize: 1 << 20, OpenFiles: 64},
	})
	require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
	initLimits, selfLimits, ok := strings.Cut(string(res.Stdout), "===\n")
	require.True(t, ok, "%s", res.Stdout)
	own, err := os.ReadFile("/proc/self/limits")
	require.NoError(t, err)
	for _, name := range []string{"Max address space", "Max file size", "Max open files"} {
		require.Equal(t, limitLine(t, string(own), name), limitLine(t, initLimits, name), "the init runs under the program's %q", name)
	}
	require.NotContains(t, limitLine(t, initLimits, "Max processes"), " 16 ")
	require.Contains(t, limitLine(t, selfLimits, "Max address space"), " 67108864 ")
	require.Contains(t, limitLine(t, selfLimits, "Max open files"), " 64 ")
}

// A program that keeps the init busy (signals it must catch, children
// it must reap) under a tight address-space and process limit: the init
// outlives it and reports its exit.
func TestHostileLimitsInitSurvivesABusyProgram(t *testing.T) {
	t.Parallel()
	// Orphans (the subshell's background true) are the init's to reap; a
	// fork the process limit refuses is the program's problem, not the
	// init's.
	script := `i=0; while [ $i -lt 200 ]; do kill -USR1 1; kill -TERM 1; (true &) 2>/dev/null; i=$((i+1)); done; echo survived; exit 7`
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", script},
		Limits: sandbox.Limits{AddressSpace: 32 << 20, Processes: 8, Timeout: 20 * time.Second},
	})
	require.Equal(t, 7, res.ExitCode, "stdout %q stderr %q", res.Stdout, res.Stderr)
	require.Contains(t, string(res.Stdout), "survived")
}

// limitLine is the line of a /proc/PID/limits text for the named limit.
func limitLine(t *testing.T, limits, name string) string {
	t.Helper()
	for _, l := range strings.Split(limits, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return strings.Join(strings.Fields(l), " ") + " "
		}
	}
	t.Fatalf("no %q in %s", name, limits)
	return ""
}
