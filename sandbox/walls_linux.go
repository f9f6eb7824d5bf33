package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The init of an isolated run builds the walls in this order: private
// mount propagation; descriptors to everything the view shows, opened while
// the host tree is still visible; a tmpfs root (mounted over /tmp of the
// run's own mount namespace) with read-only binds of the system
// directories, a curated /etc, a minimal /dev, a size-capped /tmp, the
// workspace and the binds at their host paths, and a fresh /proc;
// pivot_root and detach of the host tree; a read-only root; hostname
// (buildView, one step a function). Then lockDown (lockdown_linux.go):
// no_new_privs, Landlock, no capabilities, seccomp. The mount primitives
// the steps use are in mounts_linux.go.

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

// buildView assembles the run's file system view and pivots into it, in
// the order the walls are built (see the top of this file).
func buildView(plan *isolatePlan) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("private propagation: %w", err)
	}
	v := &viewSources{}
	defer v.close()
	if err := v.openAll(plan); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
		return fmt.Errorf("root tmpfs: %w", err)
	}
	if err := mountReadOnlyPart(plan, v); err != nil {
		return err
	}
	if err := mountDev(v.dev); err != nil {
		return err
	}
	if err := mountTmp(plan); err != nil {
		return err
	}
	if err := mountWorkspaceAndBinds(plan, v); err != nil {
		return err
	}
	if err := unix.Mount("proc", inView("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("/proc: %w", err)
	}
	return enterView(plan)
}

// viewSources are the host paths the view shows, opened before the view
// hides the host tree.
type viewSources struct {
	system, etc, dev []source
	work             source
	// binds are plan.Binds' sources, in their order.
	binds []source
	// opened are the descriptors openAll opened, closed once the view is
	// built.
	opened []int
}

// open opens path as a source.
func (v *viewSources) open(path string) (source, error) {
	s, err := openSource(path)
	if err != nil {
		return s, fmt.Errorf("open %s: %w", path, err)
	}
	if s.fd > 0 {
		v.opened = append(v.opened, s.fd)
	}
	return s, nil
}

// openAll opens the system directories, the /etc entries, the /dev nodes,
// the workspace and the binds (or takes their prepared mounts).
func (v *viewSources) openAll(plan *isolatePlan) error {
	for _, d := range systemDirs {
		s, err := v.open(d)
		if err != nil {
			return err
		}
		v.system = append(v.system, s)
	}
	for _, e := range etcEntries {
		s, err := v.open("/etc/" + e)
		if err != nil {
			return err
		}
		v.etc = append(v.etc, s)
	}
	for _, n := range devNodes {
		s, err := v.open("/dev/" + n)
		if err != nil {
			return err
		}
		v.dev = append(v.dev, s)
	}
	var err error
	if plan.DirFD > 0 {
		v.work, err = fdSource(plan.Dir, plan.DirFD)
	} else {
		v.work, err = v.open(plan.Dir)
	}
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	v.binds = make([]source, len(plan.Binds))
	for i, b := range plan.Binds {
		if b.FD > 0 {
			v.binds[i], err = fdSource(b.Path, b.FD)
		} else {
			v.binds[i], err = v.open(b.Path)
		}
		if err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		if v.binds[i].link != "" {
			return fmt.Errorf("bind %s is a symlink", b.Path)
		}
	}
	return nil
}

// close closes the descriptors openAll opened.
func (v *viewSources) close() {
	for _, fd := range v.opened {
		unix.Close(fd)
	}
}

// inView is where p of the view is while it is assembled.
func inView(p string) string { return filepath.Join(newRoot, p) }

// underTmp says whether p is inside /tmp, whose tmpfs is mounted after
// the read-only part: a mount point there is made on that tmpfs.
func underTmp(p string) bool { return p == "/tmp" || strings.HasPrefix(p, "/tmp/") }

// mountReadOnlyPart makes every mount point of the read-only part first
// (the workspace's and the binds' outside /tmp included), then binds the
// system directories and /etc entries, then sets one recursive read-only,
// nosuid, nodev over all of it (one system call instead of one per bind);
// the writable parts are mounted after.
func mountReadOnlyPart(plan *isolatePlan, v *viewSources) error {
	for _, dir := range []string{"/dev", "/tmp", "/proc"} {
		if err := os.MkdirAll(inView(dir), 0o755); err != nil {
			return err
		}
	}
	if err := writeEtc(inView("/etc")); err != nil {
		return err
	}
	for _, s := range append(v.system, v.etc...) {
		if err := makeMountpoint(s, inView(s.path)); err != nil {
			return err
		}
	}
	if !underTmp(plan.Dir) {
		if err := makeMountpoint(v.work, inView(plan.Dir)); err != nil {
			return fmt.Errorf("workspace: %w", err)
		}
	}
	for i, b := range plan.Binds {
		if !underTmp(b.Path) {
			if err := makeMountpoint(v.binds[i], inView(b.Path)); err != nil {
				return err
			}
		}
	}
	for _, s := range append(v.system, v.etc...) {
		if err := attach(s, inView(s.path), false, 0); err != nil {
			return err
		}
	}
	if err := mountAttrs(newRoot, attrRO); err != nil {
		return fmt.Errorf("read-only view: %w", err)
	}
	return nil
}

// mountDev mounts the minimal /dev: a tmpfs with the host's dev nodes
// bound in and the fd, stdin, stdout and stderr links, nosuid and noexec.
func mountDev(dev []source) error {
	if err := unix.Mount("tmpfs", inView("/dev"), "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("/dev: %w", err)
	}
	for _, s := range dev {
		if err := place(s, inView(s.path), false, 0); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, inView("/dev/"+name)); err != nil {
			return err
		}
	}
	if err := mountAttrs(inView("/dev"), unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC); err != nil {
		return fmt.Errorf("/dev: %w", err)
	}
	return nil
}

// mountTmp mounts the size-capped tmpfs on /tmp.
func mountTmp(plan *isolatePlan) error {
	if err := unix.Mount("tmpfs", inView("/tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV,
		fmt.Sprintf("size=%d,mode=1777", plan.TmpBytes)); err != nil {
		return fmt.Errorf("/tmp: %w", err)
	}
	return nil
}

// mountWorkspaceAndBinds mounts the workspace writable and each bind
// read-only unless Writable, at their host paths (making the mount points
// under /tmp now that its tmpfs is there).
func mountWorkspaceAndBinds(plan *isolatePlan, v *viewSources) error {
	if underTmp(plan.Dir) {
		if err := makeMountpoint(v.work, inView(plan.Dir)); err != nil {
			return fmt.Errorf("workspace: %w", err)
		}
	}
	if err := attach(v.work, inView(plan.Dir), plan.DirFD > 0, attrRW); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	for i, b := range plan.Binds {
		attrs := uint64(attrRO)
		if b.Writable {
			attrs = attrRW
		}
		if underTmp(b.Path) {
			if err := makeMountpoint(v.binds[i], inView(b.Path)); err != nil {
				return err
			}
		}
		if err := attach(v.binds[i], inView(b.Path), b.FD > 0, attrs); err != nil {
			return err
		}
	}
	return nil
}

// enterView pivots into the assembled view and detaches the host tree,
// sets the hostname, closes nested user namespaces where it can and
// enters the workspace.
func enterView(plan *isolatePlan) error {
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
