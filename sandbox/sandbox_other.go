//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
)

// Init returns immediately: the sandbox runs only on Linux.
func Init() {}

// Check reports that this OS has none of the sandbox's primitives.
func Check() HostReport {
	return HostReport{OS: runtime.GOOS, Arch: runtime.GOARCH, MinLandlockABI: MinLandlockABI,
		CgroupControllers: []string{}, CgroupV1Controllers: []string{}, Cgroup: CgroupReport{Mode: CgroupNone}, Problems: []string{"only Linux is supported"}}
}

// LandlockABI is 0: Landlock is a Linux LSM.
func LandlockABI() int { return 0 }

type isolation struct{ root bool }

type isolatePlan struct{}

func newIsolation(Options) (*isolation, error) { return nil, errors.New("only Linux is supported") }

func defaultSelfPath() string {
	self, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return self
}

func rlimitsFor(Limits, bool) []rlimit { return nil }

func (r *Runner) probe() error {
	return fmt.Errorf("%w: only Linux is supported", ErrSandbox)
}

func (r *Runner) run(context.Context, runParams) (Result, error) {
	return Result{}, fmt.Errorf("%w: only Linux is supported", ErrSandbox)
}

func openExecutable() (*os.File, error) { return nil, errors.New("only Linux is supported") }

type cgroups struct{}

func detectCgroups(Options) (*cgroups, CgroupReport) { return nil, CgroupReport{Mode: CgroupNone} }

type wsNamespace struct{ file string }

func openWorkspaceNamespace(string) (*wsNamespace, error) {
	return nil, errors.New("only Linux is supported")
}
func (*wsNamespace) probe() error               { return errors.New("only Linux is supported") }
func (*wsNamespace) hostPath(dir string) string { return dir }
func (*wsNamespace) unmount(string) error       { return nil }
func (*wsNamespace) full(string) (bool, bool)   { return false, false }
func (*wsNamespace) tree(string, int64, int64, int, int) (*os.File, string, error) {
	return nil, "only Linux is supported", nil
}

// HostIDs are the worker's own ids: there is no isolated mode here.
func (r *Runner) HostIDs() (uid, gid int) { return os.Geteuid(), os.Getegid() }

// processDrop is Linux's: a root worker's process mode drops to it.
type processDrop struct{ UID, GID int }

func newProcessDrop(Options) (*processDrop, error) { return nil, nil }

func (*processDrop) handOver(string) error { return nil }
