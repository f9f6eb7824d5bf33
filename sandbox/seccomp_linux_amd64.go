package sandbox

import "golang.org/x/sys/unix"

// modeSyscalls are the system calls that take a file mode, with the index
// of the mode argument; setuid and setgid bits in it are refused.
var modeSyscalls = []modeSyscall{
	{unix.SYS_CHMOD, 1}, {unix.SYS_FCHMOD, 1}, {unix.SYS_FCHMODAT, 2}, {unix.SYS_FCHMODAT2, 2},
	{unix.SYS_CREAT, 1}, {unix.SYS_OPEN, 2}, {unix.SYS_OPENAT, 3},
	{unix.SYS_MKDIR, 1}, {unix.SYS_MKDIRAT, 2}, {unix.SYS_MKNOD, 1}, {unix.SYS_MKNODAT, 2},
}

// archDeniedSyscalls are refused with EPERM on this architecture only:
// modify_ldt (a local descriptor table, an old source of kernel bugs),
// iopl and ioperm (port I/O), uselib.
var archDeniedSyscalls = []uintptr{unix.SYS_MODIFY_LDT, unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_USELIB}
