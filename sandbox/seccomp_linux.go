package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside the sandbox: they change mounts or
// namespaces, inspect or control other processes, load code into the
// kernel, or reach kernel interfaces a tool never needs.
var deniedSyscalls = []uintptr{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG,
	unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_REBOOT,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT, unix.SYS_QUOTACTL, unix.SYS_SYSLOG,
	unix.SYS_NAME_TO_HANDLE_AT, unix.SYS_OPEN_BY_HANDLE_AT,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_ADJTIMEX, unix.SYS_CLOCK_ADJTIME,
	unix.SYS_VHANGUP,
	// Reach into another process, or hold memory even the kernel cannot
	// read: pidfd_getfd takes a descriptor, kcmp compares kernel objects,
	// process_madvise and process_mrelease act on another process's
	// memory, move_pages and migrate_pages move it, memfd_secret hides
	// pages from the kernel's own inspection.
	unix.SYS_PIDFD_GETFD, unix.SYS_KCMP, unix.SYS_PROCESS_MADVISE, unix.SYS_PROCESS_MRELEASE,
	unix.SYS_MOVE_PAGES, unix.SYS_MIGRATE_PAGES, unix.SYS_MEMFD_SECRET,
	unix.SYS_FANOTIFY_INIT, unix.SYS_LOOKUP_DCOOKIE,
}

// enosysSyscalls fail with ENOSYS, so that libc and runtimes fall back to
// an older call the filter can inspect: clone3 (flags in a struct) falls
// back to clone, openat2 (mode in a struct: a setuid file could be made
// through it) to openat.
var enosysSyscalls = []uintptr{unix.SYS_CLONE3, unix.SYS_OPENAT2}

// allowedSocketFamilies are the only address families socket and
// socketpair accept; any other (netlink, vsock, packet, alg, bluetooth,
// ...) fails with EAFNOSUPPORT, as on a kernel built without it.
var allowedSocketFamilies = []uint32{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6}

// allowedPersonalities are the personality(2) arguments allowed: the
// default and the query. Others (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC,
// ...) weaken the program's own address space layout and fail with EPERM.
var allowedPersonalities = []uint32{0, 0xffffffff}

// namespaceCloneFlags are the clone flags that create namespaces; clone
// with any of them fails with EPERM. clone3 (whose flags BPF cannot read)
// fails with ENOSYS, so libc falls back to clone.
const namespaceCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// deniedIoctls fail with EPERM: TIOCSTI pushes input into a terminal,
// TIOCLINUX can do the same on a virtual console. The compare is on the
// low 32 bits of the request, as the kernel reads it.
var deniedIoctls = []uint32{unix.TIOCSTI, unix.TIOCLINUX}

// modeSyscall is a system call whose argument Arg is a file mode.
type modeSyscall struct {
	NR  uintptr
	Arg uint32
}

// setidBits are refused in any mode a sandboxed program sets: the
// workspace is id-mapped, so a file the sandbox's root makes setuid would
// be setuid to the worker's uid (host root) on the host.
const setidBits = unix.S_ISUID | unix.S_ISGID

// seccompArch is the AUDIT_ARCH value of this build, 0 where Warden has
// no deny-list.
func seccompArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	return 0
}

// seccompFilter builds the deny-list program. Offsets into struct
// seccomp_data: nr 0, arch 4, args[i] 16+8i (low half first).
func seccompFilter() []unix.SockFilter {
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		allow = unix.SECCOMP_RET_ALLOW
		eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	)
	st := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jmp := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, K: k, Jt: jt, Jf: jf}
	}
	p := []unix.SockFilter{
		st(ldAbs, 4),
		jmp(jeq, seccompArch(), 1, 0),
		st(ret, unix.SECCOMP_RET_KILL_PROCESS),
		st(ldAbs, 0),
	}
	if runtime.GOARCH == "amd64" {
		// x32 system calls share the x86_64 arch value: refuse them all.
		p = append(p, jmp(jge, 0x40000000, 0, 1), st(ret, eperm))
	}
	for _, nr := range append(deniedSyscalls, archDeniedSyscalls...) {
		p = append(p, jmp(jeq, uint32(nr), 0, 1), st(ret, eperm))
	}
	for _, nr := range enosysSyscalls {
		p = append(p, jmp(jeq, uint32(nr), 0, 1), st(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)))
	}
	// allowOnly lets nr through only when the low half of argument arg is
	// one of values, else returns deny.
	allowOnly := func(nr uintptr, arg uint32, values []uint32, deny uint32) {
		n := len(values)
		p = append(p, jmp(jeq, uint32(nr), 0, uint8(n+3)), st(ldAbs, 16+8*arg))
		for i, v := range values {
			p = append(p, jmp(jeq, v, uint8(n-i), 0))
		}
		p = append(p, st(ret, deny), st(ret, allow))
	}
	eafnosupport := unix.SECCOMP_RET_ERRNO | uint32(unix.EAFNOSUPPORT)
	allowOnly(unix.SYS_SOCKET, 0, allowedSocketFamilies, eafnosupport)
	allowOnly(unix.SYS_SOCKETPAIR, 0, allowedSocketFamilies, eafnosupport)
	allowOnly(unix.SYS_PERSONALITY, 0, allowedPersonalities, eperm)
	// fallocate with any mode but 0 (KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE,
	// COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE) fails with EOPNOTSUPP,
	// as on a file system without them: KEEP_SIZE reserves blocks past
	// RLIMIT_FSIZE, which only checks the file's size. Mode 0 is checked
	// against RLIMIT_FSIZE by the kernel; posix_fallocate uses it.
	allowOnly(unix.SYS_FALLOCATE, 1, []uint32{0}, unix.SECCOMP_RET_ERRNO|uint32(unix.EOPNOTSUPP))
	p = append(p,
		jmp(jeq, unix.SYS_CLONE, 0, 4),
		st(ldAbs, 16),
		jmp(jset, namespaceCloneFlags, 0, 1),
		st(ret, eperm),
		st(ret, allow),
	)
	for _, m := range modeSyscalls {
		p = append(p,
			jmp(jeq, uint32(m.NR), 0, 4),
			st(ldAbs, 16+8*m.Arg),
			jmp(jset, setidBits, 0, 1),
			st(ret, eperm),
			st(ret, allow),
		)
	}
	n := len(deniedIoctls)
	p = append(p, jmp(jeq, unix.SYS_IOCTL, 0, uint8(n+3)), st(ldAbs, 24))
	for i, req := range deniedIoctls {
		p = append(p, jmp(jeq, req, uint8(n-i), 0))
	}
	p = append(p, st(ret, allow), st(ret, eperm), st(ret, allow))
	return p
}

// loadSeccomp installs the filter on every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC, which sets no_new_privs on each too; the
// calling thread must have it); children forked inherit it.
func loadSeccomp() error {
	prog := seccompFilter()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	if r != 0 {
		return fmt.Errorf("seccomp: thread %d of the init could not take the filter", r)
	}
	return nil
}

// seccompAvailable reports whether the kernel accepts seccomp filters.
func seccompAvailable() bool {
	action := uint32(unix.SECCOMP_RET_ERRNO)
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	return errno == 0
}
