// Command warden-tools runs Warden's built-in Go tools (read_file,
// write_file, http_get, issue_refund) inside the sandbox. It links only
// the tools it runs, so a tool call does not pay the whole worker binary's
// package initialization. The worker runs it (tools.Options.ToolBinary;
// `warden worker` finds it next to its own binary). Build it with the
// worker, from the same commit:
//
//	go build -o bin/warden-tools ./tools/cmd/warden-tools
package main

import (
	"fmt"
	"os"

	"github.com/wardenhq/warden/tools"
)

func main() {
	tools.Reexec() // runs the tool named by the worker and exits
	fmt.Fprintln(os.Stderr, "warden-tools: the Warden worker runs this binary inside its sandbox; it does nothing on its own")
	os.Exit(2)
}
