package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Init must be the first call in main (and in TestMain) of every binary
// that creates a Runner. When the process was re-executed as the sandbox
// init, Init applies the run's limits and execs the target program, never
// returning; otherwise it returns immediately.
func Init() {
	if len(os.Args) != 2 || os.Args[1] != initArg {
		return
	}
	// Capabilities, no_new_privs, Landlock and seccomp are per thread: the
	// init applies them on this thread and forks or execs from it.
	runtime.LockOSThread()
	// One P: the init needs no parallelism, and fewer threads leave the
	// run's pids.max to the program (see initTasks).
	runtime.GOMAXPROCS(1)
	os.Exit(initMain())
}

// initMain reads the config, acknowledges it, applies the limits and execs
// the target. It returns an exit code only when that fails.
func initMain() int {
	configFile := os.NewFile(configFD, "warden-sandbox-config")
	status := os.NewFile(statusFD, "warden-sandbox-status")
	// The config is one JSON value; the worker closes the pipe after it
	// only once the init is in the run's cgroup (see awaitStart).
	var data json.RawMessage
	if err := json.NewDecoder(io.LimitReader(configFile, maxConfigBytes+1)).Decode(&data); err != nil {
		fmt.Fprintf(os.Stderr, "warden sandbox init: read config: %v (started outside the sandbox?)\n", err)
		return 125
	}
	if _, err := status.Write([]byte{ackByte}); err != nil {
		fmt.Fprintf(os.Stderr, "warden sandbox init: write status: %v\n", err)
		return 125
	}
	fail := func(stage string, code int, err error) int {
		msg, _ := json.Marshal(initStatus{Stage: stage, Error: err.Error(), ExitCode: code})
		status.Write(msg)
		return code
	}

	cfg, err := decodeConfig(data)
	if err != nil {
		return fail(stageSetup, 125, err)
	}
	// Descriptors above the passed ones came from the worker's own
	// parent without close-on-exec: closed before anything else runs.
	if err := closeFrom(cfg.LastFD + 1); err != nil {
		return fail(stageSetup, 125, fmt.Errorf("close inherited descriptors: %w", err))
	}
	// Building the view overlaps with the worker moving the init into the
	// run's cgroup (v1); nothing of the program runs before the start
	// signal.
	if cfg.Isolate != nil {
		if err := buildView(cfg.Isolate); err != nil {
			return fail(stageSetup, 125, err)
		}
	}
	if err := awaitStart(configFile); err != nil {
		return fail(stageSetup, 125, err)
	}
	if cfg.Probe && cfg.Isolate == nil {
		return 0
	}
	if len(cfg.Argv) == 0 && !cfg.Probe {
		return fail(stageSetup, 125, errors.New("empty argv"))
	}
	if cfg.Isolate != nil {
		return runIsolated(cfg, fail, status)
	}
	return execProgram(cfg, fail)
}

// decodeConfig decodes the config and checks that the worker speaks this
// init's protocol and names its descriptors.
func decodeConfig(data json.RawMessage) (initConfig, error) {
	var cfg initConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("decode config: %w", err)
	}
	if cfg.Protocol != initProtocol {
		return cfg, fmt.Errorf("this init speaks protocol %d, the worker %d: build the init and the worker together", initProtocol, cfg.Protocol)
	}
	if cfg.LastFD < statusFD {
		return cfg, fmt.Errorf("config names last descriptor %d", cfg.LastFD)
	}
	return cfg, nil
}

// awaitStart waits for the start signal: the worker closes the config
// pipe, with nothing after the config.
func awaitStart(configFile *os.File) error {
	n, err := io.Copy(io.Discard, configFile)
	configFile.Close()
	if err == nil && n > 0 {
		err = fmt.Errorf("%d unexpected bytes after the config", n)
	}
	if err != nil {
		return fmt.Errorf("wait for the start signal: %w", err)
	}
	return nil
}

// execProgram finishes a run in process mode: it closes every descriptor
// but the standard ones on exec, applies the rlimits and execs the
// program in place of the init.
func execProgram(cfg initConfig, fail func(string, int, error) int) int {
	path, err := programPath(cfg)
	if err != nil {
		return fail(stageExec, 127, err)
	}
	// Nothing but stdin, stdout and stderr survives the exec: file
	// descriptors this process inherited without close-on-exec (from the
	// worker's own parent, say) included. The status pipe closes on exec,
	// which tells Run the exec succeeded.
	if err := closeOnExecFrom(firstExtraFD); err != nil {
		return fail(stageSetup, 125, fmt.Errorf("close inherited descriptors: %w", err))
	}
	for _, rl := range cfg.Rlimits {
		lim := unix.Rlimit{Cur: rl.Cur, Max: rl.Max}
		if err := unix.Setrlimit(rl.Resource, &lim); err != nil {
			return fail(stageSetup, 125, fmt.Errorf("set %s to %d: %w", rl.Name, rl.Cur, err))
		}
	}
	if cfg.Drop != nil {
		err = execDropped(path, cfg, fail)
	} else {
		err = syscall.Exec(path, cfg.Argv, cfg.Env)
	}
	code := 126
	if errors.Is(err, syscall.ENOENT) {
		code = 127
	}
	return fail(stageExec, code, fmt.Errorf("exec %q: %w", cfg.Argv[0], err))
}

// programPath resolves Argv[0]: SelfExe is the worker's executable the
// worker handed over (a dedicated init is not the worker binary), anything
// else goes through lookPath.
func programPath(cfg initConfig) (string, error) {
	if cfg.Argv[0] == SelfExe && cfg.ExeFD > 0 {
		return "/proc/self/fd/" + strconv.Itoa(cfg.ExeFD), nil
	}
	return lookPath(cfg.Argv[0], cfg.Env)
}

// lookPath resolves file like a shell would, but only in the PATH of the
// program's environment, ignoring empty and relative PATH entries. A name
// with a slash is used as is (relative names resolve in the workspace).
func lookPath(file string, env []string) (string, error) {
	if file == "" {
		return "", errors.New("empty program name")
	}
	if strings.Contains(file, "/") {
		return file, nil
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in PATH (%s)", file, pathEnv)
}

// closeFrom closes every descriptor >= first except those on the kernel's
// shared anonymous inode (epoll, eventfd and the like): the Go runtime of
// the init owns its netpoller's epoll and eventfd descriptors, created at
// a moment the init does not choose, and closing them crashes the init
// (epollwait: EBADF). An inherited descriptor of that kind holds no file,
// socket or pipe, and the init is non-dumpable before the program starts.
func closeFrom(first int) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	var fds []int
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			fds = append(fds, fd)
		}
	}
	return closeFDs(fds)
}

// closeFDs closes each descriptor in fds that is open and not on the
// shared anonymous inode (see closeFrom).
func closeFDs(fds []int) error {
	anon, err := anonInode()
	if err != nil {
		return err
	}
	for _, fd := range fds {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			continue // closed already, or the directory listing's own descriptor
		}
		if st.Dev == anon.Dev && st.Ino == anon.Ino {
			continue
		}
		unix.Close(fd)
	}
	return nil
}

// anonInode is the identity of the kernel's shared anonymous inode, read
// off a fresh eventfd.
func anonInode() (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return st, fmt.Errorf("eventfd: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, fmt.Errorf("fstat eventfd: %w", err)
	}
	return st, nil
}

// closeOnExecFrom marks every descriptor >= first close-on-exec.
func closeOnExecFrom(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	// Kernels before 5.11: walk /proc/self/fd.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err != nil || fd < first {
			continue
		}
		// The directory's own descriptor is gone by now: EBADF is fine.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return err
		}
	}
	return nil
}

// runIsolated finishes an isolated run: it applies the rlimits, locks the
// thread down, forks the program (PID 2 of the run's PID namespace; the
// init stays PID 1 and reaps orphans), waits for it and reports how it
// ended on the status pipe. When the init exits, the kernel kills every
// other process of the namespace.
func runIsolated(cfg initConfig, fail func(string, int, error) int, status *os.File) int {
	if err := closeOnExecFrom(firstExtraFD); err != nil {
		return fail(stageSetup, 125, fmt.Errorf("close inherited descriptors: %w", err))
	}
	if err := lockDown(cfg.Isolate, cfg.ExeFD); err != nil {
		return fail(stageSetup, 125, err)
	}
	if cfg.Probe {
		return 0
	}
	path, err := programPath(cfg)
	if err != nil {
		return fail(stageExec, 127, err)
	}
	// The init outlives the program's start and holds the status pipe:
	// nothing of it may reach the program. Non-dumpable, its descriptors,
	// memory and /proc entries are closed to a process without
	// CAP_SYS_PTRACE (pidfd_getfd, /proc/1/fd, /proc/1/mem, ptrace), and it
	// keeps only the descriptors it still uses: the status pipe, and the
	// worker's executable when that is the program.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fail(stageSetup, 125, fmt.Errorf("non-dumpable init: %w", err))
	}
	if err := closeFDs(passedToClose(cfg, path)); err != nil {
		return fail(stageSetup, 125, fmt.Errorf("close passed descriptors: %w", err))
	}
	// Signals the program sends PID 1 are caught and dropped: the kernel
	// delivers them to a namespace's init only when it has a handler, and
	// Go's would end the init (TERM, HUP, INT) or dump its goroutines into
	// the tool's stderr (QUIT). Caught, not ignored, so the program
	// starts with default dispositions. SIGKILL from the worker still ends
	// the run.
	signal.Notify(make(chan os.Signal, 1), ignoredSignals...)
	dir, err := os.Getwd()
	if err != nil {
		return fail(stageSetup, 125, err)
	}
	// The program's rlimits bind only the program: the child sets them
	// between fork and exec (spawn). Bound by the program's address-space
	// or process limit for the whole run, the init's Go runtime could not
	// start a thread or grow its heap and would die (pthread_create
	// failed), taking the run's report with it.
	pid, err := spawn(path, cfg.Argv, cfg.Env, dir, cfg.Rlimits)
	if err != nil {
		code := 126
		if errors.Is(err, syscall.ENOENT) {
			code = 127
		}
		return fail(stageExec, code, fmt.Errorf("exec %q: %w", cfg.Argv[0], err))
	}
	return reapProgram(pid, fail, status)
}

// passedToClose are the descriptors the worker passed after the status
// pipe, up to LastFD, but the worker's executable when it is the program
// (path is then its /proc/self/fd link).
func passedToClose(cfg initConfig, path string) []int {
	var passed []int
	for fd := statusFD + 1; fd <= cfg.LastFD; fd++ {
		if fd == cfg.ExeFD && strings.HasPrefix(path, "/proc/self/fd/") {
			continue
		}
		passed = append(passed, fd)
	}
	return passed
}

// reapProgram reaps every process that ends (orphans of the namespace
// included) until the program pid does, reports how it ended on the
// status pipe and returns the exit code the init exits with.
func reapProgram(pid int, fail func(string, int, error) int, status *os.File) int {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fail(stageSetup, 125, fmt.Errorf("wait: %w", err))
		}
		if got != pid {
			continue // an orphan the init reaped
		}
		st := initStatus{Stage: stageExited, ExitCode: ws.ExitStatus()}
		if ws.Signaled() {
			st.Signal = int(ws.Signal())
			st.ExitCode = 128 + st.Signal
		}
		msg, _ := json.Marshal(st)
		status.Write(msg)
		return st.ExitCode
	}
}

// ignoredSignals are the signals the isolated init catches and drops.
var ignoredSignals = []os.Signal{
	unix.SIGTERM, unix.SIGQUIT, unix.SIGHUP, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGPIPE, unix.SIGALRM, unix.SIGVTALRM, unix.SIGPROF, unix.SIGTSTP, unix.SIGTTIN,
	unix.SIGTTOU, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGWINCH, unix.SIGIO, unix.SIGPWR,
	unix.SIGSYS, unix.SIGTRAP, unix.SIGSTKFLT,
}
