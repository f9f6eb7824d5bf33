package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// isolatePlan is what the init needs to build the walls of one run.
type isolatePlan struct {
	// Dir is the workspace, mounted writable at the same path.
	Dir string `json:"dir"`
	// DirFD is a detached, id-mapped mount of Dir the worker prepared
	// (open_tree), or 0 when the init binds Dir by path.
	DirFD int        `json:"dir_fd,omitempty"`
	Binds []planBind `json:"binds,omitempty"`
	// TmpBytes caps the tmpfs on /tmp.
	TmpBytes uint64 `json:"tmp_bytes"`
	// MinLandlockABI is the lowest Landlock ABI the init accepts.
	MinLandlockABI int `json:"min_landlock_abi"`
}

// planBind is one Bind with the descriptor of its prepared mount, if any.
type planBind struct {
	Path     string `json:"path"`
	Writable bool   `json:"writable,omitempty"`
	FD       int    `json:"fd,omitempty"`
}

// isolation is the worker-side state of isolated mode.
type isolation struct {
	uid, gid int
	// root is true when the worker is host root: then it maps the sandbox
	// to an unprivileged host id and prepares id-mapped mounts of the
	// workspace and binds (the sandbox's uid could not reach them through
	// root-only directories, and sees their root-owned files as its own).
	root bool
	// userns is a user namespace with the sandbox's id map, kept open for
	// id-mapped mounts.
	userns *os.File
}

// Cloneflags of an isolated run.
const isolateCloneflags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID |
	unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS

func newIsolation(opts Options) (*isolation, error) {
	rep := checkHost()
	if !rep.UserNamespaces {
		return nil, fmt.Errorf("user namespaces: %s", rep.UserNamespacesError)
	}
	if rep.LandlockABI < MinLandlockABI {
		return nil, fmt.Errorf("landlock ABI %d is below the minimum %d", rep.LandlockABI, MinLandlockABI)
	}
	if !rep.Seccomp {
		return nil, errors.New("seccomp filters are not available")
	}
	if seccompArch() == 0 {
		return nil, errors.New("no seccomp deny-list for this architecture")
	}
	if opts.HostUID < 0 || opts.HostGID < 0 {
		return nil, fmt.Errorf("host uid %d, gid %d: the sandbox's host ids must be positive (0 keeps the default %d)", opts.HostUID, opts.HostGID, DefaultHostID)
	}
	iso := &isolation{uid: os.Geteuid(), gid: os.Getegid()}
	if iso.uid == 0 {
		iso.root = true
		iso.uid = DefaultHostID
		iso.gid = DefaultHostID
		if opts.HostUID > 0 {
			iso.uid = opts.HostUID
		}
		if opts.HostGID > 0 {
			iso.gid = opts.HostGID
		}
		ns, err := holdUserNamespace(iso.uid, iso.gid)
		if err != nil {
			return nil, fmt.Errorf("user namespace for id-mapped mounts: %w", err)
		}
		iso.userns = ns
	}
	return iso, nil
}

// holdUserNamespace creates a user namespace mapping 0 to uid/gid and
// returns a descriptor that keeps it alive: a child that blocks on a pipe
// is started in it, its namespace opened, and the child released.
func holdUserNamespace(uid, gid int) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	defer w.Close()
	// `cat` reads the pipe until the worker closes it.
	cmd := exec.Command("/bin/cat")
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ns, openErr := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	w.Close()
	waitErr := cmd.Wait()
	if openErr != nil {
		return nil, errors.Join(openErr, waitErr)
	}
	return ns, nil
}

// sysProcAttr is the clone configuration of an isolated run's init.
func (iso *isolation) sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Setsid:      true,
		Pdeathsig:   syscall.SIGKILL,
		Cloneflags:  isolateCloneflags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: iso.uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: iso.gid, Size: 1}},
	}
	if iso.root {
		// Drop host root's supplementary groups (gid 0 among them): only a
		// privileged parent may allow setgroups in the new namespace.
		a.GidMappingsEnableSetgroups = true
		a.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	return a
}

// prepare plans the mounts of one run. As host root it opens detached
// mounts of the workspace (owned by the sandbox's host id, no id map) and
// of the binds (id-mapped), passed to the init as descriptors from firstFD
// on; the caller closes the returned files. tree, when set, is the
// workspace's tmpfs (a detached clone the quota layer made), used instead
// of a clone of dir.
func (iso *isolation) prepare(dir string, tree *os.File, binds []Bind, lim Limits, firstFD int) (*isolatePlan, []*os.File, error) {
	plan := &isolatePlan{Dir: dir, TmpBytes: lim.TmpBytes, MinLandlockABI: MinLandlockABI}
	var files []*os.File
	fail := func(err error) (*isolatePlan, []*os.File, error) {
		closeFiles(files...)
		return nil, nil, err
	}
	mount := func(path string, writable bool) (int, error) {
		if !iso.root {
			return 0, nil
		}
		f, err := iso.detachedMount(path, writable)
		if err != nil {
			return 0, fmt.Errorf("%w: mount %s: %w", ErrSandbox, path, err)
		}
		files = append(files, f)
		return firstFD + len(files) - 1, nil
	}
	if iso.root {
		// The workspace is not id-mapped: the program's files are owned on
		// disk by the sandbox's host id (owner_linux.go).
		work, err := iso.workspaceMount(dir, tree)
		if err != nil {
			return fail(fmt.Errorf("%w: mount %s: %w", ErrSandbox, dir, err))
		}
		files = append(files, work)
		plan.DirFD = firstFD + len(files) - 1
	}
	for _, b := range binds {
		fd, err := mount(b.Path, b.Writable)
		if err != nil {
			return fail(err)
		}
		plan.Binds = append(plan.Binds, planBind{Path: b.Path, Writable: b.Writable, FD: fd})
	}
	return plan, files, nil
}

// detachedMount clones the mount tree at path (open_tree) and maps its
// host root ownership to the sandbox's root, nosuid and nodev, read-only
// unless writable.
func (iso *isolation) detachedMount(path string, writable bool) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("open_tree: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := iso.idmap(f, writable); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// idmap maps the host root ownership of the detached mount f to the
// sandbox's root, nosuid and nodev, read-only unless writable.
func (iso *isolation) idmap(f *os.File, writable bool) error {
	attr := &unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(iso.userns.Fd()),
	}
	if !writable {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(int(f.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("id-mapped mount: %w", err)
	}
	return nil
}
