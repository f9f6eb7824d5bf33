// Package sandbox runs one program in an isolated Linux process with
// resource limits, a scrubbed environment, a wall-clock deadline that kills
// the whole process tree, and capped output.
//
// The worker binary re-executes itself as a small init (hidden first
// argument "__warden_sandbox_init", see Init): the init receives its
// configuration over a pipe (fd 3), acknowledges on a status pipe (fd 4),
// applies the limits and execs the target; exec closes the status pipe, so
// Run can tell a failed exec (reported on the pipe) from the program's own
// failure. Every program — a process
// tool such as `sh`, or a Go tool that re-execs the worker binary again —
// goes through the same init, so every tool gets the same walls.
//
// The first mode is "process": a new session and process group, rlimits
// (CPU, address space, file size, open files, no core dumps), no inherited
// file descriptors beyond stdin, stdout and stderr, and an environment
// reduced to a fixed base plus what the caller lists. It does not confine
// file system or network access. Later modes add namespaces, Landlock and
// seccomp behind the same API; policies see the mode (Runner.Mode).
//
// Programs that call sandbox.New must call Init first thing in main (and in
// TestMain), because the re-executed binary is the program itself:
//
//	func main() {
//		sandbox.Init()
//		...
//	}
package sandbox
