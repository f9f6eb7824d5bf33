package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The init of an isolated run builds the walls in this order: private
// mount propagation; descriptors to everything the view shows, opened while
// the host tree is still visible; a tmpfs root (mounted over /tmp of the
// run's own mount namespace) with read-only binds of the system
// directories, a curated /etc, a minimal /dev, a size-capped /tmp, the
// workspace and the binds at their host paths, and a fresh /proc;
// pivot_root and detach of the host tree; a read-only root; hostname. Then
// lockDown: no_new_privs, no capabilities, Landlock, seccomp.

// systemDirs are bound read-only (or recreated as the symlinks they are).
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// etcEntries are the parts of the host's /etc programs need; nothing with
// secrets (shadow, gshadow, sudoers, ssh, ssl/private keys are not listed).
var etcEntries = []string{
	"alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
	"nsswitch.conf", "protocols", "services", "mime.types", "os-release", "debian_version",
	"ssl/certs", "ca-certificates", "ca-certificates.conf", "gai.conf", "host.conf", "inputrc",
}

// devNodes are bound from the host into /dev.
var devNodes = []string{"null", "zero", "full", "random", "urandom"}

const (
	sandboxHostname = "warden-sandbox"
	// newRoot is where the view is assembled before pivot_root; it is the
	// run's own mount namespace's /tmp, never a host directory.
	newRoot = "/tmp"
)

// source is a host path opened before the view hides the host tree.
type source struct {
	path   string
	fd     int
	isDir  bool
	link   string // set when the host path is a symlink to recreate
	absent bool
}

func openSource(path string) (source, error) {
	s := source{path: path}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		s.absent = true
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		s.link, err = os.Readlink(path)
		return s, err
	}
	s.isDir = fi.IsDir()
	s.fd, err = unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	return s, err
}

func fdSource(path string, fd int) (source, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return source{}, err
	}
	return source{path: path, fd: fd, isDir: st.Mode&unix.S_IFMT == unix.S_IFDIR}, nil
}

// mountAttrs sets attrs on the mount tree at target.
func mountAttrs(target string, attrs uint64) error {
	return unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attrs})
}

// place makes target a mount point for s and attaches s there.
func place(s source, target string, detached bool, attrs uint64) error {
	if err := makeMountpoint(s, target); err != nil {
		return err
	}
	return attach(s, target, detached, attrs)
}

// makeMountpoint creates target as an empty file or directory (parents
// included) for s, or as the symlink s is.
func makeMountpoint(s source, target string) error {
	if s.absent {
		return nil
	}
	if s.link != "" {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.Symlink(s.link, target)
	}
	if s.isDir {
		return os.MkdirAll(target, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// attach binds (or, for a detached mount, moves) s onto target and sets
// attrs on it, unless attrs is 0.
func attach(s source, target string, detached bool, attrs uint64) error {
	if s.absent || s.link != "" {
		return nil
	}
	if detached {
		if err := unix.MoveMount(s.fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("move_mount %s: %w", s.path, err)
		}
	} else if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(s.fd), target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", s.path, err)
	}
	if attrs == 0 {
		return nil
	}
	if err := mountAttrs(target, attrs); err != nil {
		return fmt.Errorf("mount attributes of %s: %w", s.path, err)
	}
	return nil
}

const (
	attrRO = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	attrRW = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
)

// buildView assembles the run's file system view and pivots into it.
func buildView(plan *isolatePlan) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("private propagation: %w", err)
	}
	var opened []int
	defer func() {
		for _, fd := range opened {
			unix.Close(fd)
		}
	}()
	open := func(path string) (source, error) {
		s, err := openSource(path)
		if err != nil {
			return s, fmt.Errorf("open %s: %w", path, err)
		}
		if s.fd > 0 {
			opened = append(opened, s.fd)
		}
		return s, nil
	}
	var system, etc, dev []source
	for _, d := range systemDirs {
		s, err := open(d)
		if err != nil {
			return err
		}
		system = append(system, s)
	}
	for _, e := range etcEntries {
		s, err := open("/etc/" + e)
		if err != nil {
			return err
		}
		etc = append(etc, s)
	}
	for _, n := range devNodes {
		s, err := open("/dev/" + n)
		if err != nil {
			return err
		}
		dev = append(dev, s)
	}
	var work source
	var err error
	if plan.DirFD > 0 {
		work, err = fdSource(plan.Dir, plan.DirFD)
	} else {
		work, err = open(plan.Dir)
	}
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	binds := make([]source, len(plan.Binds))
	for i, b := range plan.Binds {
		if b.FD > 0 {
			binds[i], err = fdSource(b.Path, b.FD)
		} else {
			binds[i], err = open(b.Path)
		}
		if err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		if binds[i].link != "" {
			return fmt.Errorf("bind %s is a symlink", b.Path)
		}
	}

	if err := unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
		return fmt.Errorf("root tmpfs: %w", err)
	}
	at := func(p string) string { return filepath.Join(newRoot, p) }
	underTmp := func(p string) bool { return p == "/tmp" || strings.HasPrefix(p, "/tmp/") }
	// Every mount point of the read-only part first, then the binds, then
	// one recursive read-only, nosuid, nodev over all of it (one system
	// call instead of one per bind); the writable parts are mounted after.
	for _, dir := range []string{"/dev", "/tmp", "/proc"} {
		if err := os.MkdirAll(at(dir), 0o755); err != nil {
			return err
		}
	}
	if err := writeEtc(at("/etc")); err != nil {
		return err
	}
	for _, s := range append(system, etc...) {
		if err := makeMountpoint(s, at(s.path)); err != nil {
			return err
		}
	}
	if !underTmp(plan.Dir) {
		if err := makeMountpoint(work, at(plan.Dir)); err != nil {
			return fmt.Errorf("workspace: %w", err)
		}
	}
	for i, b := range plan.Binds {
		if !underTmp(b.Path) {
			if err := makeMountpoint(binds[i], at(b.Path)); err != nil {
				return err
			}
		}
	}
	for _, s := range append(system, etc...) {
		if err := attach(s, at(s.path), false, 0); err != nil {
			return err
		}
	}
	if err := mountAttrs(newRoot, attrRO); err != nil {
		return fmt.Errorf("read-only view: %w", err)
	}

	if err := unix.Mount("tmpfs", at("/dev"), "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("/dev: %w", err)
	}
	for _, s := range dev {
		if err := place(s, at(s.path), false, 0); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, at("/dev/"+name)); err != nil {
			return err
		}
	}
	if err := mountAttrs(at("/dev"), unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC); err != nil {
		return fmt.Errorf("/dev: %w", err)
	}
	if err := unix.Mount("tmpfs", at("/tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV,
		fmt.Sprintf("size=%d,mode=1777", plan.TmpBytes)); err != nil {
		return fmt.Errorf("/tmp: %w", err)
	}
	if underTmp(plan.Dir) {
		if err := makeMountpoint(work, at(plan.Dir)); err != nil {
			return fmt.Errorf("workspace: %w", err)
		}
	}
	if err := attach(work, at(plan.Dir), plan.DirFD > 0, attrRW); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	for i, b := range plan.Binds {
		attrs := uint64(attrRO)
		if b.Writable {
			attrs = attrRW
		}
		if underTmp(b.Path) {
			if err := makeMountpoint(binds[i], at(b.Path)); err != nil {
				return err
			}
		}
		if err := attach(binds[i], at(b.Path), b.FD > 0, attrs); err != nil {
			return err
		}
	}
	if err := unix.Mount("proc", at("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("/proc: %w", err)
	}

	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach host tree: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(sandboxHostname)); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	// Nested user namespaces would hand the program capabilities of its own;
	// seccomp refuses the system calls that create them as well.
	_ = os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("0"), 0)
	if err := unix.Chdir(plan.Dir); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	return nil
}

// writeEtc writes the sandbox's own passwd, group, hostname and hosts.
func writeEtc(etc string) error {
	files := map[string]string{
		"passwd":   "root:x:0:0:sandbox:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group":    "root:x:0:\nnogroup:x:65534:\n",
		"hostname": sandboxHostname + "\n",
		"hosts":    "127.0.0.1 localhost " + sandboxHostname + "\n::1 localhost\n",
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

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
