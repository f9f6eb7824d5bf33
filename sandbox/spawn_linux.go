package sandbox

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxSpawnLimits bounds the rlimits one program start sets (rlimitsFor
// names at most six).
const maxSpawnLimits = 8

// spawnPlan is one program start, prepared in full before the fork.
// Between fork and exec the child is a one-thread copy of a
// multi-threaded Go process: it may not allocate, grow its stack, take a
// lock or run the scheduler, so it only issues system calls on what this
// holds (see spawnChild).
type spawnPlan struct {
	path, argv, envv, dir uintptr // *byte, **byte (nil-terminated), **byte, *byte
	limits                [maxSpawnLimits]spawnLimit
	nlimits               int
	ppid                  uintptr
	errFD                 uintptr
	noSignals             uint64 // the empty signal mask the program starts with
	errno                 uint32 // written by the child to errFD when exec fails
}

type spawnLimit struct {
	resource uintptr
	lim      unix.Rlimit
}

// spawn starts path as a child of this process with stdin, stdout and
// stderr its only descriptors (every other one must be close-on-exec),
// dir as its directory, SIGKILL when this thread's process dies, and
// limits set in the child between fork and exec, so they bind the program
// and never this process. It returns once the exec has succeeded or with
// the exec's error.
func spawn(path string, argv, env []string, dir string, limits []rlimit) (int, error) {
	if len(limits) > maxSpawnLimits {
		return 0, fmt.Errorf("%d rlimits, at most %d", len(limits), maxSpawnLimits)
	}
	pathp, err := syscall.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return 0, err
	}
	envvp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return 0, err
	}
	dirp, err := syscall.BytePtrFromString(dir)
	if err != nil {
		return 0, err
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("exec status pipe: %w", err)
	}
	defer unix.Close(pipe[0])
	p := &spawnPlan{
		path: uintptr(unsafe.Pointer(pathp)), argv: uintptr(unsafe.Pointer(&argvp[0])),
		envv: uintptr(unsafe.Pointer(&envvp[0])), dir: uintptr(unsafe.Pointer(dirp)),
		nlimits: len(limits), ppid: uintptr(unix.Getpid()), errFD: uintptr(pipe[1]),
	}
	for i, rl := range limits {
		p.limits[i] = spawnLimit{resource: uintptr(rl.Resource), lim: unix.Rlimit{Cur: rl.Cur, Max: rl.Max}}
	}

	// No descriptor may be created without close-on-exec while the child
	// is a copy of this process (the same lock os/exec takes).
	syscall.ForkLock.Lock()
	pid, errno := forkChild(p)
	syscall.ForkLock.Unlock()
	unix.Close(pipe[1])
	if errno != 0 {
		return 0, fmt.Errorf("fork: %w", errno)
	}
	// EOF: the exec closed the pipe. Four bytes: the errno of a failed step.
	var buf [4]byte
	for {
		n, err := unix.Read(pipe[0], buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		runtime.KeepAlive(pathp)
		runtime.KeepAlive(argvp)
		runtime.KeepAlive(envvp)
		runtime.KeepAlive(dirp)
		runtime.KeepAlive(p)
		if err == nil && n == 0 {
			return int(pid), nil
		}
		var ws unix.WaitStatus
		for {
			if _, werr := unix.Wait4(int(pid), &ws, 0, nil); !errors.Is(werr, unix.EINTR) {
				break
			}
		}
		if err != nil {
			return 0, fmt.Errorf("read exec status: %w", err)
		}
		if n != len(buf) {
			return 0, fmt.Errorf("short exec status (%d bytes)", n)
		}
		return 0, syscall.Errno(*(*uint32)(unsafe.Pointer(&buf[0])))
	}
}

// forkChild forks with every signal blocked on this thread (so no Go
// signal handler runs in the child) and runs spawnChild in the child; in
// this process it returns the child's pid.
//
//go:nosplit
//go:norace
func forkChild(p *spawnPlan) (uintptr, syscall.Errno) {
	all := ^uint64(0)
	var old uint64
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	pid, _, errno := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno == 0 && pid == 0 {
		spawnChild(p) // never returns
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	return pid, errno
}

// spawnChild is the child between fork and exec: system calls only.
//
//go:nosplit
//go:norace
func spawnChild(p *spawnPlan) {
	var errno syscall.Errno
	// Die with the init, and at once if it died before this line.
	if _, _, errno = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0, 0); errno != 0 {
		goto fail
	}
	if ppid, _, _ := syscall.RawSyscall6(unix.SYS_GETPPID, 0, 0, 0, 0, 0, 0); ppid != p.ppid {
		syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 137, 0, 0, 0, 0, 0)
	}
	if _, _, errno = syscall.RawSyscall6(unix.SYS_CHDIR, p.dir, 0, 0, 0, 0, 0); errno != 0 {
		goto fail
	}
	for i := range p.limits {
		if i >= p.nlimits {
			break
		}
		l := &p.limits[i]
		if _, _, errno = syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, l.resource, uintptr(unsafe.Pointer(&l.lim)), 0, 0, 0); errno != 0 {
			goto fail
		}
	}
	// The program starts with no signal blocked (forkChild blocked all).
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&p.noSignals)), 0, 8, 0, 0)
	_, _, errno = syscall.RawSyscall6(unix.SYS_EXECVE, p.path, p.argv, p.envv, 0, 0, 0)
fail:
	p.errno = uint32(errno)
	syscall.RawSyscall6(unix.SYS_WRITE, p.errFD, uintptr(unsafe.Pointer(&p.errno)), 4, 0, 0, 0)
	syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 127, 0, 0, 0, 0, 0)
}
