// The protocol between the worker and the sandbox init: what a run
// sends (initConfig over the config pipe), what the init reports (the
// ack byte, then initStatus on the status pipe), and which descriptor
// the init receives each file at.

package sandbox

import "os"

// runParams is one prepared run.
type runParams struct {
	dir    string
	env    []string
	stdin  []byte
	limits Limits
	binds  []Bind
	config initConfig
	// tree is the workspace's tmpfs (a detached clone) with QuotaTmpfs.
	tree *os.File
}

// initConfig is what the parent sends the init over the config pipe.
type initConfig struct {
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Rlimits []rlimit `json:"rlimits,omitempty"`
	// Probe asks the init to acknowledge and exit 0 without exec (after
	// building the isolation, when Isolate is set).
	Probe bool `json:"probe,omitempty"`
	// Isolate is set in isolated mode: the init builds the walls, forks the
	// program as PID 2 of the namespace and reports how it ended.
	Isolate *isolatePlan `json:"isolate,omitempty"`
	// Drop is set in process mode as root: the init runs the program as
	// this unprivileged id, with no_new_privs and no capabilities.
	Drop *processDrop `json:"drop,omitempty"`
	// ExeFD is the descriptor of the worker's executable, run for SelfExe.
	ExeFD int `json:"exe_fd,omitempty"`
	// LastFD is the highest descriptor the worker passes; the init closes
	// every descriptor above it at once (ones the worker inherited without
	// close-on-exec) and, in isolated mode, every passed one the program
	// does not need before it forks the program.
	LastFD int `json:"last_fd"`
	// Protocol is initProtocol of the worker; an init of another build
	// refuses to run.
	Protocol int `json:"protocol"`
}

// initProtocol versions the config the worker sends the init.
// 3: the worker closes the config pipe as the start signal, after moving
// the init into the run's cgroup.
// 4: LastFD; an isolated init exits with the program's exit code (128 +
// signal), which the worker holds its status report to.
// 5: Drop (an init that ignored it would run a root worker's process-mode
// tools as root).
const initProtocol = 5

// rlimit is one resource limit the init applies before exec.
type rlimit struct {
	Name     string `json:"name"`
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// initStatus is what the init reports when it cannot exec the target.
type initStatus struct {
	// Stage is "setup" (the sandbox failed) or "exec" (the program could
	// not be started: not found, not executable).
	Stage    string `json:"stage"`
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
	// Signal is the signal number that ended the program (stage "exited").
	Signal int `json:"signal,omitempty"`
}

// Protocol between Run and the init.
const (
	// initArg is the hidden first argument that makes Init act.
	initArg = "__warden_sandbox_init"
	// ackByte is the first byte the init writes on the status pipe, proving
	// the re-executed binary is a sandbox init.
	ackByte = 'W'

	stageSetup  = "setup"
	stageExec   = "exec"
	stageExited = "exited"

	maxConfigBytes = 16 << 20
	maxStatusBytes = 64 << 10
)

// Descriptors of the init: the one place that says which is which. The
// worker passes cmd.ExtraFiles, and ExtraFiles[i] is the init's descriptor
// firstExtraFD+i: the config pipe, the status pipe and the worker's
// executable, then from firstVarFD on the ones a run may or may not pass,
// in this order: the dedicated init binary (Options.SelfPath; the init is
// executed through it), then the prepared mounts of the workspace and the
// binds (isolated mode as host root, see isolation.prepare). The config
// names the variable ones (isolatePlan.DirFD, planBind.FD) and the last
// (initConfig.LastFD); see passDescriptors.
const (
	// firstExtraFD is the first descriptor past stdin, stdout and stderr:
	// nothing from it on survives the exec of the program.
	firstExtraFD = 3
	// configFD is the config pipe's read end (ExtraFiles[0]).
	configFD = firstExtraFD
	// statusFD is the status pipe's write end (ExtraFiles[1]), closed on
	// exec.
	statusFD = firstExtraFD + 1
	// exeFD is the worker's executable (ExtraFiles[2]), run for SelfExe;
	// the config repeats it (initConfig.ExeFD).
	exeFD = firstExtraFD + 2
	// firstVarFD is the first descriptor whose file depends on the run.
	firstVarFD = exeFD + 1
)
