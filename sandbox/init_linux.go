package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	os.Exit(initMain())
}

// initMain reads the config, acknowledges it, applies the limits and execs
// the target. It returns an exit code only when that fails.
func initMain() int {
	configFile := os.NewFile(configFD, "warden-sandbox-config")
	status := os.NewFile(statusFD, "warden-sandbox-status")
	data, err := io.ReadAll(io.LimitReader(configFile, maxConfigBytes+1))
	configFile.Close()
	if err != nil {
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

	var cfg initConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fail(stageSetup, 125, fmt.Errorf("decode config: %w", err))
	}
	if cfg.Probe {
		return 0
	}
	if len(cfg.Argv) == 0 {
		return fail(stageSetup, 125, errors.New("empty argv"))
	}
	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		return fail(stageExec, 127, err)
	}
	// Nothing but stdin, stdout and stderr survives the exec: file
	// descriptors this process inherited without close-on-exec (from the
	// worker's own parent, say) included. The status pipe closes on exec,
	// which tells Run the exec succeeded.
	if err := closeOnExecFrom(3); err != nil {
		return fail(stageSetup, 125, fmt.Errorf("close inherited descriptors: %w", err))
	}
	for _, rl := range cfg.Rlimits {
		lim := unix.Rlimit{Cur: rl.Cur, Max: rl.Max}
		if err := unix.Setrlimit(rl.Resource, &lim); err != nil {
			return fail(stageSetup, 125, fmt.Errorf("set %s to %d: %w", rl.Name, rl.Cur, err))
		}
	}
	err = syscall.Exec(path, cfg.Argv, cfg.Env)
	code := 126
	if errors.Is(err, syscall.ENOENT) {
		code = 127
	}
	return fail(stageExec, code, fmt.Errorf("exec %q: %w", cfg.Argv[0], err))
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
