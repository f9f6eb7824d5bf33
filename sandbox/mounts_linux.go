// The mount primitives the view is built with: a source (a host path
// opened before the host tree is hidden, or a prepared mount), its mount
// point in the view, and the bind or move that attaches it there.

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
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
