//go:build !linux

package sandbox

import (
	"context"
	"fmt"
	"os"
)

// Init returns immediately: the sandbox runs only on Linux.
func Init() {}

func defaultSelfPath() string {
	self, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return self
}

func rlimitsFor(Limits) []rlimit { return nil }

func (r *Runner) probe() error {
	return fmt.Errorf("%w: only Linux is supported", ErrSandbox)
}

func (r *Runner) run(context.Context, runParams) (Result, error) {
	return Result{}, fmt.Errorf("%w: only Linux is supported", ErrSandbox)
}
