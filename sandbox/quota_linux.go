package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The tmpfs quota. Each workspace's tmpfs is mounted in a mount
// namespace of the worker's own (the workspace namespace), never in the
// host's: the host sees the workspace as the empty directory it created,
// so nothing on the host (the worker, backups, an operator's find)
// traverses what a tool wrote or follows a link it planted, and removing
// the directory on the host makes the kernel detach the tmpfs (rmdir of a
// mount point of another namespace is allowed and detaches it). One
// locked OS thread of the worker lives in that namespace and does every
// mount, unmount and open_tree there; the namespace is kept in a file
// (a bind mount of /proc/<pid>/task/<tid>/ns/mnt, Options.WorkspaceNamespace)
// so a restarted worker joins it and finds the tmpfs of the runs in
// flight.

// tmpfsMagic is statfs f_type of a tmpfs.
const tmpfsMagic = 0x01021994

// wsNamespace is the worker's workspace mount namespace.
type wsNamespace struct {
	reqs     chan func()
	pid, tid int
	// file is where the namespace is kept, "" when it lives only as
	// long as the worker.
	file string
}

// namespaces are the workspace namespaces of this process by file: every
// Runner of a process shares one thread per namespace.
var namespaces = struct {
	sync.Mutex
	byFile map[string]nsEntry
}{byFile: map[string]nsEntry{}}

// nsEntry is a namespace and why it is not kept, if it is not.
type nsEntry struct {
	n   *wsNamespace
	err error
}

// openWorkspaceNamespace joins the namespace kept at file, or creates one
// and keeps it there; a Runner made later in the same process shares it.
func openWorkspaceNamespace(file string) (*wsNamespace, error) {
	namespaces.Lock()
	defer namespaces.Unlock()
	if e, ok := namespaces.byFile[file]; ok {
		return e.n, e.err
	}
	n, err := newWorkspaceNamespace(file)
	if n != nil {
		namespaces.byFile[file] = nsEntry{n, err}
	}
	return n, err
}

func newWorkspaceNamespace(file string) (*wsNamespace, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("workspace namespace: %w", err)
	}
	// One worker at a time joins or creates the namespace.
	lock, err := os.OpenFile(file+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("workspace namespace: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("workspace namespace: lock: %w", err)
	}
	n := &wsNamespace{reqs: make(chan func()), pid: os.Getpid(), file: file}
	type ready struct {
		tid    int
		joined bool
		err    error
	}
	readyc := make(chan ready)
	go func() {
		// Never unlocked: the thread is in another mount namespace, and
		// the runtime must not run other goroutines on it.
		runtime.LockOSThread()
		joined, err := n.enter()
		readyc <- ready{unix.Gettid(), joined, err}
		if err != nil {
			return // the thread exits with the goroutine
		}
		for f := range n.reqs {
			f()
		}
	}()
	rd := <-readyc
	if rd.err != nil {
		return nil, fmt.Errorf("workspace namespace: %w", rd.err)
	}
	n.tid = rd.tid
	if !rd.joined {
		if err := n.keep(); err != nil {
			// The namespace works; it only dies with this worker.
			n.file = ""
			return n, fmt.Errorf("workspace namespace works but cannot be kept at %s (tmpfs workspaces would not survive a worker restart): %w", file, err)
		}
	}
	return n, nil
}

// enter moves the calling (locked) thread into the kept namespace, or
// into a new one whose mounts receive the host's but never propagate back.
func (n *wsNamespace) enter() (joined bool, err error) {
	// A thread that shares its file system attributes with others may not
	// change its mount namespace.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return false, fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	if fd, err := unix.Open(n.file, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		err = unix.Setns(fd, unix.CLONE_NEWNS)
		unix.Close(fd)
		if err == nil {
			return true, nil
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return false, fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return false, fmt.Errorf("slave propagation: %w", err)
	}
	return false, nil
}

// keep binds the namespace onto n.file, in a private mount of its
// directory (a namespace file may not be bound where it would propagate).
func (n *wsNamespace) keep() error {
	dir := filepath.Dir(n.file)
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		// Not a mount point yet: make it one.
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dir, err)
		}
		if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("private %s: %w", dir, err)
		}
	}
	_ = unix.Unmount(n.file, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW) // a stale namespace
	f, err := os.OpenFile(n.file, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	src := fmt.Sprintf("/proc/%d/task/%d/ns/mnt", n.pid, n.tid)
	if err := unix.Mount(src, n.file, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	return nil
}

// do runs f on the namespace's thread.
func (n *wsNamespace) do(f func() error) error {
	done := make(chan error, 1)
	n.reqs <- func() { done <- f() }
	return <-done
}

// hostPath is dir as the host reads it through the namespace's thread.
func (n *wsNamespace) hostPath(dir string) string {
	return fmt.Sprintf("/proc/%d/task/%d/root%s", n.pid, n.tid, dir)
}

// probe mounts and unmounts a small tmpfs in the namespace, proving the
// tmpfs quota works here.
func (n *wsNamespace) probe() error {
	dir, err := os.MkdirTemp("", "warden-quota-probe-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	return n.do(func() error {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=64k,nr_inodes=16,mode=0700"); err != nil {
			return fmt.Errorf("mount tmpfs: %w", err)
		}
		return unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	})
}

// tree returns a detached clone (open_tree) of dir's tmpfs, mounting one
// with the caps when dir has none yet. It returns a nil file and the
// reason when dir cannot get a tmpfs and must be budgeted instead: it is
// not the directory the host sees (a file system the namespace does not
// show), or it already holds files (a run from before the tmpfs quota).
func (n *wsNamespace) tree(dir string, maxBytes, maxInodes int64, uid, gid int) (*os.File, string, error) {
	var host, hostParent unix.Stat_t
	if err := unix.Lstat(dir, &host); err != nil {
		return nil, "", fmt.Errorf("%w: workspace: %w", ErrSandbox, err)
	}
	if host.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, "", fmt.Errorf("%w: workspace %s is not a directory", ErrSandbox, dir)
	}
	if err := unix.Stat(filepath.Dir(dir), &hostParent); err != nil {
		return nil, "", fmt.Errorf("%w: workspace: %w", ErrSandbox, err)
	}
	var tree *os.File
	var fallback string
	err := n.do(func() error {
		parent, err := unix.Open(filepath.Dir(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fallback = "the workspace's directory is not visible in the workspace namespace: " + err.Error()
			return nil
		}
		defer unix.Close(parent)
		var ps, st unix.Stat_t
		if err := unix.Fstat(parent, &ps); err != nil {
			return err
		}
		if ps.Dev != hostParent.Dev || ps.Ino != hostParent.Ino {
			fallback = "the workspace root is on a file system mounted after the workspace namespace was made (restart the worker after removing " + n.file + ")"
			return nil
		}
		// Another worker of this host may prepare the same workspace.
		if err := unix.Flock(parent, unix.LOCK_EX); err != nil {
			return fmt.Errorf("lock %s: %w", filepath.Dir(dir), err)
		}
		defer unix.Flock(parent, unix.LOCK_UN)
		base := filepath.Base(dir)
		if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("workspace %s is not a directory in the workspace namespace", dir)
		}
		if st.Dev == ps.Dev {
			// Not a mount point: the host's directory, which must be empty.
			if st.Ino != host.Ino {
				fallback = "the workspace is not the host's directory in the workspace namespace"
				return nil
			}
			empty, err := isEmptyDir(parent, base)
			if err != nil {
				return err
			}
			if !empty {
				fallback = "the workspace holds files from before the tmpfs quota"
				return nil
			}
			fd, err := unix.Openat(parent, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			opts := fmt.Sprintf("size=%d,nr_inodes=%d,mode=0700,uid=%d,gid=%d", max(maxBytes, 0), max(maxInodes, 0), uid, gid)
			if err := unix.Mount("tmpfs", "/proc/thread-self/fd/"+strconv.Itoa(fd), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
				return fmt.Errorf("mount the workspace tmpfs on %s: %w", dir, err)
			}
		} else {
			var fs unix.Statfs_t
			if err := unix.Statfs(dir, &fs); err != nil {
				return err
			}
			if fs.Type != tmpfsMagic {
				fallback = "something other than a tmpfs is mounted on the workspace in the workspace namespace"
				return nil
			}
		}
		fd, err := unix.OpenTree(parent, base, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("open_tree %s: %w", dir, err)
		}
		tree = os.NewFile(uintptr(fd), dir)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("%w: workspace tmpfs: %w", ErrSandbox, err)
	}
	return tree, fallback, nil
}

// isEmptyDir reports whether parent/name holds no entries.
func isEmptyDir(parent int, name string) (bool, error) {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

// full reports whether dir's tmpfs has no byte or no inode left.
func (n *wsNamespace) full(dir string) (bytes, inodes bool) {
	var fs unix.Statfs_t
	if n.do(func() error { return unix.Statfs(dir, &fs) }) != nil || fs.Type != tmpfsMagic {
		return false, false
	}
	return fs.Blocks > 0 && fs.Bfree == 0, fs.Files > 0 && fs.Ffree == 0
}

// unmount detaches every tmpfs mounted on dir in the namespace, without
// following a link at dir.
func (n *wsNamespace) unmount(dir string) error {
	return n.do(func() error {
		for i := 0; i < 16; i++ {
			err := unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				return nil // not (or no longer) a mount point
			}
			if err != nil {
				return fmt.Errorf("unmount the workspace tmpfs %s: %w", dir, err)
			}
		}
		return nil
	})
}
