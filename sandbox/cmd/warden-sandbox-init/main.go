// Command warden-sandbox-init is the dedicated sandbox init: a binary that
// links only the sandbox package, so each tool run starts in about a
// millisecond instead of paying the whole worker binary's package
// initialization. The worker runs it (sandbox.Options.SelfPath; `warden
// worker` finds it next to its own binary); Go tools still re-execute the
// worker binary, which the worker hands over as a descriptor. Build it
// with the worker, from the same commit:
//
//	go build -o bin/warden-sandbox-init ./sandbox/cmd/warden-sandbox-init
package main

import (
	"fmt"
	"os"

	"github.com/wardenhq/warden/sandbox"
)

func main() {
	sandbox.Init() // never returns when started by a worker
	fmt.Fprintln(os.Stderr, "warden-sandbox-init: the Warden worker runs this binary as its sandbox init; it does nothing on its own")
	os.Exit(2)
}
