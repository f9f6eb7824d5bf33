package sandbox

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The workspace's owner on disk. As host root the worker maps the
// sandbox's root to an unprivileged host id (iso.uid, iso.gid) and gives
// the program its workspace without an id map: what the program creates
// is owned on disk by that id, never by host root. The workspace's files
// are handed to the id before a run: a new workspace's directory, and, once,
// the files runs before this wall left owned by host root.

// HostIDs are the host uid and gid the sandbox's root is on disk: the
// unprivileged id a root worker maps it to, or the worker's own ids (a
// non-root worker, or process mode).
func (r *Runner) HostIDs() (uid, gid int) {
	if r.iso != nil {
		return r.iso.uid, r.iso.gid
	}
	if r.drop != nil {
		return r.drop.UID, r.drop.GID
	}
	return os.Geteuid(), os.Getegid()
}

// ownTree gives the directory dirfd and everything below it to uid and
// gid. It walks by descriptor (openat with O_NOFOLLOW from the parent's
// descriptor, fchownat without following): a link the program planted,
// or a directory it swaps for one while the walk runs, never reaches a
// file outside. A directory already owned by uid and gid is taken as
// handed over with its contents. It refuses (changing nothing more) a
// tree with a file of another host user, or a world-writable or sticky
// directory (such as /tmp): that is not a workspace of this worker.
func ownTree(dirfd, uid, gid int) error {
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return err
	}
	if int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	return ownBelow(dirfd, &st, uid, gid, 0)
}

// maxOwnDepth bounds the walk's recursion (each level holds a descriptor).
const maxOwnDepth = 256

// ownable says why a workspace entry may not be handed over, or "".
func ownable(st *unix.Stat_t, uid int) string {
	if st.Uid != 0 && int(st.Uid) != uid {
		return fmt.Sprintf("it holds a file of host uid %d (use a new, empty directory as the workspace)", st.Uid)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Mode&(unix.S_ISVTX|0o002) != 0 {
		return "it holds a world-writable or sticky directory such as /tmp (use a new, empty directory as the workspace)"
	}
	return ""
}

func ownBelow(dirfd int, st *unix.Stat_t, uid, gid, depth int) error {
	if depth > maxOwnDepth {
		return fmt.Errorf("directories nested deeper than %d", maxOwnDepth)
	}
	if why := ownable(st, uid); why != "" {
		return errors.New(why)
	}
	rd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(rd), "workspace")
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	// Judge every entry before changing any.
	for _, name := range names {
		var est unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &est, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			if why := ownable(&est, uid); why != "" {
				return fmt.Errorf("%s: %s", name, why)
			}
		}
	}
	if err := unix.Fchownat(dirfd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	for _, name := range names {
		var est unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &est, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		if est.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("chown %s: %w", name, err)
			}
			continue
		}
		sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		err = ownBelow(sub, &est, uid, gid, depth+1)
		unix.Close(sub)
		if err != nil {
			return fmt.Errorf("%s/%w", name, err)
		}
	}
	return nil
}

// workspaceMount is the workspace's mount for the init, as host root: a
// detached clone (open_tree) of dir, or the workspace's tmpfs tree, handed
// to the sandbox's host id, nosuid and nodev, without an id map.
func (iso *isolation) workspaceMount(dir string, tree *os.File) (*os.File, error) {
	if tree == nil {
		fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return nil, fmt.Errorf("open_tree: %w", err)
		}
		tree = os.NewFile(uintptr(fd), dir)
	}
	if err := ownTree(int(tree.Fd()), iso.uid, iso.gid); err != nil {
		tree.Close()
		return nil, fmt.Errorf("hand the workspace to host uid %d: %w", iso.uid, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(int(tree.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		tree.Close()
		return nil, fmt.Errorf("mount attributes: %w", err)
	}
	return tree, nil
}
