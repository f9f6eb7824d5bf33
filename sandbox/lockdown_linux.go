// The last walls of an isolated run, built once the view is in place:
// lockDown (no_new_privs, Landlock, no capabilities, seccomp), applied on
// every thread of the init where the Go runtime allows it.

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// lockDown confines the init (which then forks the program): no_new_privs,
// Landlock, no capabilities, seccomp. Each is a per-thread attribute; the
// Go runtime's other threads of the init get them too (AllThreadsSyscall)
// where the runtime allows it, which is in a binary without cgo such as
// warden-sandbox-init. The seccomp filter and no_new_privs reach every
// thread in any binary (SECCOMP_FILTER_FLAG_TSYNC).
func lockDown(plan *isolatePlan, exeFD int) error {
	if _, err := onAllThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	rules := []landlockRule{
		{path: "/", access: llRead},
		{path: "/dev", access: llDevice},
		{path: "/tmp", access: handledFS(99)},
		{path: plan.Dir, access: handledFS(99)},
		// Go tools re-execute the worker binary, which lies outside the view.
		{path: SelfExe, access: llFileRead},
	}
	if exeFD > 0 {
		rules = append(rules, landlockRule{path: "/proc/self/fd/" + strconv.Itoa(exeFD), access: llFileRead})
	}
	for _, b := range plan.Binds {
		if b.Writable {
			rules = append(rules, landlockRule{path: b.Path, access: handledFS(99)})
		}
	}
	if err := restrictLandlock(plan.MinLandlockABI, rules); err != nil {
		return err
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	return loadSeccomp()
}

// onAllThreads issues a system call on every thread of the process, or,
// where the Go runtime refuses that (cgo), on the calling thread only; all
// says which.
func onAllThreads(trap, a1, a2, a3 uintptr) (all bool, err error) {
	_, _, errno := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	if errno == syscall.ENOTSUP {
		_, _, errno = syscall.RawSyscall(trap, a1, a2, a3)
	} else {
		all = true
	}
	if errno != 0 {
		return all, errno
	}
	return all, nil
}

// dropCapabilities empties the bounding, ambient, inheritable, permitted
// and effective sets and locks the securebits, so that no exec (of a root
// program or a setuid file) regains a capability; on every thread where
// onAllThreads can.
func dropCapabilities() error {
	last := 40
	if raw, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if _, err := onAllThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if _, err := onAllThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	const secbits = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 // NOROOT, NO_SETUID_FIXUP, KEEP_CAPS, each locked
	if _, err := onAllThreads(unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, secbits&^0x10, 0); err != nil {
		return fmt.Errorf("securebits: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if _, err := onAllThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}
