package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Process mode as root (with ProcessAsRoot's consent): the init drops to
// an unprivileged host id before it execs the program, so the tool does
// not run as host root. It sets no_new_privs, empties the capability
// bounding and ambient sets, leaves every supplementary group and changes
// to the uid and gid (which empties the permitted and effective sets);
// the worker's workspace is handed to that id first and the worker makes
// itself non-dumpable (its memory and environment are not readable by the
// id through /proc or ptrace, even were the ids to match).

// processDrop is the host id a root worker's process-mode init runs the
// program as.
type processDrop struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
}

// newProcessDrop is the drop of a process-mode Runner: nil unless the
// worker runs as root.
func newProcessDrop(opts Options) (*processDrop, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if opts.HostUID < 0 || opts.HostGID < 0 {
		return nil, fmt.Errorf("%w: host uid %d, gid %d: the sandbox's host ids must be positive (0 keeps the default %d)", ErrSandbox, opts.HostUID, opts.HostGID, DefaultHostID)
	}
	d := &processDrop{UID: DefaultHostID, GID: DefaultHostID}
	if opts.HostUID > 0 {
		d.UID = opts.HostUID
	}
	if opts.HostGID > 0 {
		d.GID = opts.HostGID
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("%w: make the worker non-dumpable: %w", ErrSandbox, err)
	}
	return d, nil
}

// handOver gives dir to the drop's id (see ownTree).
func (d *processDrop) handOver(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: workspace: %w", ErrSandbox, err)
	}
	defer unix.Close(fd)
	if err := ownTree(fd, d.UID, d.GID); err != nil {
		return fmt.Errorf("%w: hand the workspace %s to host uid %d: %w", ErrSandbox, dir, d.UID, err)
	}
	return nil
}

// dropPrivileges runs in the init, on the thread that execs the program.
func dropPrivileges(d *processDrop) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	for c := 0; c < 64; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear the ambient capabilities: %w", err)
	}
	// syscall's set*id calls change every thread of the process.
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(d.GID, d.GID, d.GID); err != nil {
		return fmt.Errorf("setresgid %d: %w", d.GID, err)
	}
	if err := syscall.Setresuid(d.UID, d.UID, d.UID); err != nil {
		return fmt.Errorf("setresuid %d: %w", d.UID, err)
	}
	if os.Geteuid() != d.UID || os.Getegid() != d.GID {
		return fmt.Errorf("still uid %d gid %d after the drop to %d:%d", os.Geteuid(), os.Getegid(), d.UID, d.GID)
	}
	return nil
}

// execDropped drops to cfg.Drop and execs path. The program itself may sit
// in a directory only root traverses (a tool binary in the worker's
// directory): it is opened before the drop and, when the dropped id may
// not reach it by path, executed through that descriptor. Only Argv[0]
// gets this; what the program runs after is the id's to reach.
func execDropped(path string, cfg initConfig, fail func(string, int, error) int) error {
	fd, openErr := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err := dropPrivileges(cfg.Drop); err != nil {
		os.Exit(fail(stageSetup, 125, fmt.Errorf("drop to host uid %d: %w", cfg.Drop.UID, err)))
	}
	err := syscall.Exec(path, cfg.Argv, cfg.Env)
	if errors.Is(err, unix.EACCES) && openErr == nil {
		err = syscall.Exec("/proc/self/fd/"+strconv.Itoa(fd), cfg.Argv, cfg.Env)
	}
	return err
}
