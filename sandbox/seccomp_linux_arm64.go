package sandbox

import "golang.org/x/sys/unix"

// modeSyscalls are the system calls that take a file mode, with the index
// of the mode argument; setuid and setgid bits in it are refused.
var modeSyscalls = []modeSyscall{
	{unix.SYS_FCHMOD, 1}, {unix.SYS_FCHMODAT, 2}, {unix.SYS_FCHMODAT2, 2},
	{unix.SYS_OPENAT, 3}, {unix.SYS_MKDIRAT, 2}, {unix.SYS_MKNODAT, 2},
}

// archDeniedSyscalls: none beyond deniedSyscalls on this architecture.
var archDeniedSyscalls []uintptr
