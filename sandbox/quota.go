package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Disk quota modes of a run's workspace (Options.DiskQuota, QuotaReport.Mode).
const (
	// QuotaTmpfs gives each workspace its own tmpfs with size= and
	// nr_inodes= caps, mounted once (at the run's first call) in the
	// worker's workspace mount namespace and reused by the run's later
	// calls: a write past the cap fails with ENOSPC inside the tool. It
	// needs isolated mode and a worker that may mount (host root).
	QuotaTmpfs = "tmpfs"
	// QuotaBudget measures the workspace (allocated bytes and inodes)
	// before and after each call: a call that leaves it over the budget
	// fails with ErrDiskQuota, and every later call of the run is refused
	// before it starts. It bounds the damage only after the fact: during
	// the call the tool writes to the host disk unchecked (RLIMIT_FSIZE
	// still caps each file).
	QuotaBudget = "budget"
	// QuotaNone turns the disk quota off.
	QuotaNone = "none"
)

// Defaults of the per-run disk quota.
const (
	// DefaultDiskBytes caps a run's workspace at 1 GiB: a checkout of a
	// large repository with its build output fits, and with the tmpfs
	// quota it is also the most host memory one run's files can hold
	// (tmpfs lives in RAM, and this host class has no swap).
	DefaultDiskBytes = 1 << 30
	// DefaultDiskInodes caps a run's workspace at 100,000 files and
	// directories: twice a Linux kernel checkout, and at about 1 KiB of
	// kernel memory per tmpfs inode and dentry, ~100 MiB at most.
	DefaultDiskInodes = 100_000
)

// DefaultWorkspaceNamespace is where the worker keeps its workspace mount
// namespace (a bind mount of the namespace file), so that the tmpfs
// workspaces outlive a worker restart; `nsenter --mount=<it>` shows them.
const DefaultWorkspaceNamespace = "/run/warden/workspaces.mntns"

// ErrDiskQuota wraps the error of a call whose workspace is over its disk
// budget (QuotaBudget): the call failed, and every later call of the run
// fails before it starts. It wraps ErrSandbox too.
var ErrDiskQuota = fmt.Errorf("%w: workspace disk quota", ErrSandbox)

// QuotaReport says how a Runner bounds each run's workspace.
type QuotaReport struct {
	// Mode is QuotaTmpfs, QuotaBudget or QuotaNone.
	Mode string `json:"mode"`
	// Bytes and Inodes are the caps a call gets when its Limits set none
	// (negative: no cap).
	Bytes  int64 `json:"bytes"`
	Inodes int64 `json:"inodes"`
	// Namespace is the file that keeps the workspace mount namespace
	// (QuotaTmpfs only).
	Namespace string `json:"namespace,omitempty"`
	// Notes say why a better mode is not used.
	Notes []string `json:"notes,omitempty"`
}

// String is the one-line form the worker logs and check prints.
func (q QuotaReport) String() string {
	caps := fmt.Sprintf("%s, %s per run", capString(q.Bytes, "bytes"), capString(q.Inodes, "inodes"))
	var s string
	switch q.Mode {
	case QuotaTmpfs:
		s = "tmpfs per workspace (" + caps + "), ENOSPC at the cap"
	case QuotaBudget:
		s = "budget walk before and after each call (" + caps + "): bounds the damage only after the fact"
	default:
		s = "none: RLIMIT_FSIZE per file only"
	}
	if len(q.Notes) > 0 {
		s += " (" + strings.Join(q.Notes, "; ") + ")"
	}
	return s
}

func capString(n int64, unit string) string {
	if n < 0 {
		return "no cap on " + unit
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// diskCaps returns the caps of one call: the call's Limits, else the
// Runner's, else the defaults.
func (r *Runner) diskCaps(l Limits) (bytes, inodes int64) {
	bytes, inodes = l.DiskBytes, l.DiskInodes
	if bytes == 0 {
		bytes = r.quota.Bytes
	}
	if inodes == 0 {
		inodes = r.quota.Inodes
	}
	return bytes, inodes
}

// usage is what a workspace holds.
type usage struct {
	bytes, inodes int64
}

// measure walks dir without following symbolic links and counts the
// bytes allocated (st_blocks, so sparse files count what they take and
// fallocate'd space counts) and the inodes (hard links once), the
// directory itself included. It stops early once both caps it knows
// about are passed (negative: no cap), so a flood of inodes costs the
// walk at most the cap. A directory it cannot read fails the walk: a
// tool must not hide files from the budget with chmod 000.
func measure(dir string, maxBytes, maxInodes int64) (usage, error) {
	var u usage
	seen := map[[2]uint64]bool{}
	over := func() bool {
		return (maxBytes >= 0 && u.bytes > maxBytes) || (maxInodes >= 0 && u.inodes > maxInodes)
	}
	errOver := errors.New("over")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("measure workspace %s: %w (a directory the worker cannot read cannot be budgeted)", dir, err)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("measure workspace %s: %w", dir, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			u.inodes++
			u.bytes += fi.Size()
		} else {
			// Only a file with more than one link can be met twice.
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if st.Nlink <= 1 || d.IsDir() || !seen[key] {
				if st.Nlink > 1 && !d.IsDir() {
					seen[key] = true
				}
				u.inodes++
				u.bytes += st.Blocks * 512
			}
		}
		if over() {
			return errOver
		}
		return nil
	})
	if errors.Is(err, errOver) {
		return u, nil
	}
	return u, err
}

// checkBudget is the budget walk of one workspace; when is "before" or
// "after" the call. It returns an ErrDiskQuota error when the workspace
// is over a cap.
func checkBudget(dir string, maxBytes, maxInodes int64, when string) (usage, error) {
	u, err := measure(dir, maxBytes, maxInodes)
	if err != nil {
		return u, fmt.Errorf("%w: %w", ErrDiskQuota, err)
	}
	return u, overBudget(dir, u, maxBytes, maxInodes, when)
}

// errOverBudget marks an overBudget error (the walk itself worked). It is
// permanent: the run stays over its budget, so a retry is refused again
// (callers find Permanent with errors.As).
var errOverBudget = permanentError{errors.New("over budget")}

// permanentError is an error a retry cannot cure.
type permanentError struct{ error }

// Permanent reports that retrying cannot succeed.
func (permanentError) Permanent() bool { return true }

// overBudget returns an ErrDiskQuota error when u is over a cap.
func overBudget(dir string, u usage, maxBytes, maxInodes int64, when string) error {
	var over []string
	if maxBytes >= 0 && u.bytes > maxBytes {
		over = append(over, fmt.Sprintf("at least %d bytes allocated (cap %d)", u.bytes, maxBytes))
	}
	if maxInodes >= 0 && u.inodes > maxInodes {
		over = append(over, fmt.Sprintf("at least %d files and directories (cap %d)", u.inodes, maxInodes))
	}
	if len(over) == 0 {
		return nil
	}
	msg := "the call left the workspace over its budget"
	if when == "before" {
		msg = "the workspace is over its budget from an earlier call: no further call of this run may start"
	}
	return fmt.Errorf("%w: %w: %s (workspace %s: %s); the run must end (its workspace is removed with it) or an operator must free space in it",
		ErrDiskQuota, errOverBudget, msg, dir, strings.Join(over, ", "))
}

// RemoveWorkspace removes a workspace directory that no run needs any
// more, without following symbolic links the tool planted: os.RemoveAll
// unlinks links, never their targets, and dir itself must not be a link.
// A tmpfs of the workspace mount namespace mounted on dir is detached by
// the kernel when dir is removed on the host (Runner.RemoveWorkspace
// unmounts it first).
func RemoveWorkspace(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		// A link or file where the workspace was: remove the entry itself.
		return os.Remove(dir)
	}
	return os.RemoveAll(dir)
}
