// Command warden runs Warden's worker, starts and inspects governed agent
// runs, acts on approvals, reads the audit log, and runs a local demo stack.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/wardenhq/warden/tools"
)

func main() {
	tools.Reexec() // sandbox init and Go tool children; returns in the CLI itself
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(1)
	}
}
