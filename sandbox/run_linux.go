package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errTimeout is the cause of a run context that hit Limits.Timeout.
var errTimeout = errors.New("sandbox timeout")

// waitDelay bounds how long Run waits, once the process group is dead, for
// pipes that a process which escaped the group may still hold.
const waitDelay = time.Second

// openExecutable opens the running executable, for SelfExe.
func openExecutable() (*os.File, error) {
	return os.Open("/proc/self/exe")
}

func defaultSelfPath() string {
	if _, err := os.Stat(SelfExe); err == nil {
		return SelfExe
	}
	self, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return self
}

// rlimitsFor lists the rlimits the init applies: each non-zero limit, and
// never a core dump. nproc asks for RLIMIT_NPROC: in isolated mode without
// a cgroup (whose pids.max is the better limit: it counts every task of
// the run, whatever its uid).
func rlimitsFor(l Limits, nproc bool) []rlimit {
	rl := []rlimit{{Name: "RLIMIT_CORE", Resource: unix.RLIMIT_CORE}}
	if l.CPUSeconds > 0 {
		// The soft limit sends SIGXCPU; the hard limit a second later SIGKILL,
		// for programs that catch SIGXCPU.
		rl = append(rl, rlimit{Name: "RLIMIT_CPU", Resource: unix.RLIMIT_CPU, Cur: l.CPUSeconds, Max: l.CPUSeconds + 1})
	}
	if l.AddressSpace > 0 {
		rl = append(rl, rlimit{Name: "RLIMIT_AS", Resource: unix.RLIMIT_AS, Cur: l.AddressSpace, Max: l.AddressSpace})
	}
	if l.FileSize > 0 {
		rl = append(rl, rlimit{Name: "RLIMIT_FSIZE", Resource: unix.RLIMIT_FSIZE, Cur: l.FileSize, Max: l.FileSize})
	}
	if l.OpenFiles > 0 {
		rl = append(rl, rlimit{Name: "RLIMIT_NOFILE", Resource: unix.RLIMIT_NOFILE, Cur: l.OpenFiles, Max: l.OpenFiles})
	}
	if nproc && l.Processes > 0 {
		// Counted per user namespace: the run's own processes only.
		rl = append(rl, rlimit{Name: "RLIMIT_NPROC", Resource: unix.RLIMIT_NPROC, Cur: l.Processes, Max: l.Processes})
	}
	return rl
}

// probe starts the init once without a target, proving SelfPath acts as
// the sandbox init.
func (r *Runner) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env, err := buildEnv(os.TempDir(), nil)
	if err != nil {
		return err
	}
	p := runParams{
		dir:    os.TempDir(),
		env:    env,
		limits: Limits{}.withDefaults(),
		config: initConfig{Probe: true, Env: env},
	}
	res, err := r.run(ctx, p)
	if err != nil {
		return fmt.Errorf("%w: self-test of %s: %s", ErrSandbox, r.selfPath, strings.TrimPrefix(err.Error(), ErrSandbox.Error()+": "))
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%w: self-test of %s: init exited %d: %s", ErrSandbox, r.selfPath, res.ExitCode, bytes.TrimSpace(res.Stderr))
	}
	return nil
}

// pipes are the parent's and the child's ends of the run's pipes.
type pipes struct {
	configR, configW *os.File
	statusR, statusW *os.File
	stdoutR, stdoutW *os.File
	stderrR, stderrW *os.File
}

func newPipes() (*pipes, error) {
	p := &pipes{}
	for _, pair := range []struct{ r, w **os.File }{
		{&p.configR, &p.configW},
		{&p.statusR, &p.statusW},
		{&p.stdoutR, &p.stdoutW},
		{&p.stderrR, &p.stderrW},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			p.closeAll()
			return nil, err
		}
		*pair.r, *pair.w = r, w
	}
	return p, nil
}

// closeChildEnds closes the parent's copies of the ends the child uses.
func (p *pipes) closeChildEnds() {
	closeFiles(p.configR, p.statusW, p.stdoutW, p.stderrW)
}

func (p *pipes) closeAll() {
	closeFiles(p.configR, p.configW, p.statusR, p.statusW, p.stdoutR, p.stdoutW, p.stderrR, p.stderrW)
}

func closeFiles(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// capture keeps the first max bytes of a stream and counts the rest.
type capture struct {
	max   int
	buf   []byte
	total int64
	done  chan struct{}
}

func newCapture(max int) *capture {
	return &capture{max: max, done: make(chan struct{})}
}

// drain reads f to EOF (or until its read deadline), keeping at most max bytes.
func (c *capture) drain(f *os.File) {
	defer close(c.done)
	chunk := make([]byte, 32<<10)
	for {
		n, err := f.Read(chunk)
		if n > 0 {
			c.total += int64(n)
			if room := c.max - len(c.buf); room > 0 {
				c.buf = append(c.buf, chunk[:min(n, room)]...)
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *capture) truncated() bool { return c.total > int64(len(c.buf)) }

func (r *Runner) run(ctx context.Context, p runParams) (res Result, err error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("%w: run not started: %w", ErrSandbox, err)
	}
	// The run's cgroup, made before the init starts and removed once it
	// is reaped; what it counted is reported on the way out.
	var cg *runCgroup
	var events cgroupEvents
	closeCgroup := func() {}
	if r.cgroups != nil {
		if cg, err = r.cgroups.create(p.limits); err != nil {
			return Result{}, fmt.Errorf("%w: cgroup: %w", ErrSandbox, err)
		}
		closed := false
		closeCgroup = func() {
			if !closed {
				closed = true
				events, _ = cg.close() // a cgroup not removed is retried at the next run
			}
		}
		defer func() {
			closeCgroup()
			res.noteLimits(events, p.limits)
		}()
	}
	p.config.Protocol = initProtocol
	extra := []*os.File{r.exe} // fd 5
	p.config.ExeFD = 5
	initPath := r.selfPath
	if r.init != nil {
		extra = append(extra, r.init) // fd 6
		initPath = "/proc/self/fd/6"
	}
	if r.iso != nil {
		plan, files, err := r.iso.prepare(p.dir, p.tree, p.binds, p.limits, 5+len(extra))
		if err != nil {
			return Result{}, err
		}
		defer closeFiles(files...)
		p.config.Isolate = plan
		extra = append(extra, files...)
	}
	p.config.LastFD = 4 + len(extra)
	config, err := json.Marshal(p.config)
	if err != nil {
		return Result{}, fmt.Errorf("%w: encode init config: %w", ErrSandbox, err)
	}
	if len(config) > maxConfigBytes {
		return Result{}, fmt.Errorf("%w: argv and env too large (%d bytes)", ErrSandbox, len(config))
	}
	pp, err := newPipes()
	if err != nil {
		return Result{}, fmt.Errorf("%w: pipes: %w", ErrSandbox, err)
	}
	defer pp.closeAll()

	runCtx, cancel := context.WithTimeoutCause(ctx, p.limits.Timeout, errTimeout)
	defer cancel()

	// killMu orders the kill of the process group against reaping the
	// group leader: the group is signalled only while the leader is alive
	// or a zombie, so its ID cannot have been reused.
	var (
		killMu   sync.Mutex
		reaped   bool
		killedBy error
	)
	cmd := exec.CommandContext(runCtx, initPath, initArg)
	cmd.Args[0] = "warden-sandbox"
	cmd.Dir = p.dir
	if r.iso != nil {
		// The init enters the workspace after building its view.
		cmd.Dir = "/"
	}
	cmd.Env = p.env
	if p.stdin != nil {
		cmd.Stdin = bytes.NewReader(p.stdin)
	}
	cmd.Stdout = pp.stdoutW
	cmd.Stderr = pp.stderrW
	cmd.ExtraFiles = append([]*os.File{pp.configR, pp.statusW}, extra...) // fds 3, 4, 5 (exe), then the init and mounts
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid: true,
		// Kill the init (and so the target) if the worker thread that
		// started it dies; see go.dev/issue/27505.
		Pdeathsig: syscall.SIGKILL,
	}
	if r.iso != nil {
		cmd.SysProcAttr = r.iso.sysProcAttr()
	}
	if cg != nil && cg.fd != nil {
		// clone3(CLONE_INTO_CGROUP): the init starts inside the cgroup.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cg.fd.Fd())
	}
	cmd.Cancel = func() error {
		killMu.Lock()
		defer killMu.Unlock()
		if reaped {
			return os.ErrProcessDone
		}
		killedBy = context.Cause(runCtx)
		return killGroup(cmd.Process.Pid)
	}
	cmd.WaitDelay = waitDelay

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("%w: start init: %w", ErrSandbox, err)
	}
	pid := cmd.Process.Pid
	pp.closeChildEnds()

	stdout, stderr := newCapture(p.limits.MaxOutputBytes), newCapture(p.limits.MaxOutputBytes)
	go stdout.drain(pp.stdoutR)
	go stderr.drain(pp.stderrR)

	// Send the config, then read the init's status until exec closes it
	// (or the init exits). Both end at the latest when the Timeout kills
	// the group.
	_, writeErr := pp.configW.Write(config)
	if cg != nil {
		// The init reads the config and builds its view meanwhile, but runs
		// nothing of the program's before the pipe closes: the program
		// starts inside the cgroup. ESRCH: the init is gone already, and
		// its status says why.
		if err := cg.join(pid); err != nil && !errors.Is(err, unix.ESRCH) {
			killMu.Lock()
			killGroup(pid)
			reaped = true
			killMu.Unlock()
			cmd.Wait()
			return Result{}, fmt.Errorf("%w: cgroup: %w", ErrSandbox, err)
		}
	}
	pp.configW.Close()
	status, readErr := io.ReadAll(io.LimitReader(pp.statusR, maxStatusBytes))

	exitErr := waitExited(pid)
	duration := time.Since(start)
	// Kill whatever the program left behind in its group; the leader is
	// not reaped yet, so the group ID is still ours.
	killMu.Lock()
	groupErr := killGroup(pid)
	reaped = true
	killMu.Unlock()
	_ = cmd.Wait() // the exit status is read from ProcessState below
	// Kill what is left in the cgroup (in process mode: also what left the
	// process group), read its counters and remove it.
	closeCgroup()
	if cmd.ProcessState == nil {
		return Result{}, fmt.Errorf("%w: wait for init: %w", ErrSandbox, errors.Join(exitErr, groupErr))
	}

	// The group is dead, so the output pipes reach EOF unless a process
	// escaped the group (setsid); do not wait for those forever.
	timer := time.AfterFunc(waitDelay, func() {
		pp.stdoutR.SetReadDeadline(time.Now())
		pp.stderrR.SetReadDeadline(time.Now())
	})
	<-stdout.done
	<-stderr.done
	timer.Stop()

	res = Result{
		Stdout:          stdout.buf,
		Stderr:          stderr.buf,
		StdoutTruncated: stdout.truncated(),
		StderrTruncated: stderr.truncated(),
		Duration:        duration,
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		res.Signal = unix.SignalName(ws.Signal())
		if res.Signal == "" {
			res.Signal = ws.Signal().String()
		}
		res.ExitCode = 128 + int(ws.Signal())
	default:
		res.ExitCode = ws.ExitStatus()
	}
	killMu.Lock()
	cause := killedBy
	killMu.Unlock()
	res.TimedOut = errors.Is(cause, errTimeout)
	if cause != nil && !res.TimedOut {
		return res, fmt.Errorf("%w: run interrupted: %w", ErrSandbox, cause)
	}
	if res.TimedOut {
		return res, nil
	}

	// Interpret the status pipe: the ack byte, then a report only if the
	// init failed before or at exec.
	if readErr != nil {
		return res, fmt.Errorf("%w: read init status: %w", ErrSandbox, readErr)
	}
	if len(status) == 0 || status[0] != ackByte {
		msg := bytes.TrimSpace(res.Stderr)
		if writeErr != nil {
			msg = append(msg, fmt.Sprintf(" (config: %v)", writeErr)...)
		}
		return res, fmt.Errorf("%w: %s did not act as the sandbox init (does main call sandbox.Init first?); exit %d: %s",
			ErrSandbox, r.selfPath, res.ExitCode, msg)
	}
	if len(status) == 1 {
		return res, nil
	}
	var st initStatus
	if err := json.Unmarshal(status[1:], &st); err != nil {
		return res, fmt.Errorf("%w: malformed init status %q: %w", ErrSandbox, status[1:], err)
	}
	if st.Stage == stageExited {
		// The init exits with the code it reports: a report that disagrees
		// was not written by the init alone.
		if st.ExitCode != res.ExitCode {
			return res, fmt.Errorf("%w: init status reports exit %d but the init exited %d: status channel tampered with", ErrSandbox, st.ExitCode, res.ExitCode)
		}
		res.ExitCode = st.ExitCode
		if st.Signal > 0 {
			res.Signal = unix.SignalName(syscall.Signal(st.Signal))
			if res.Signal == "" {
				res.Signal = syscall.Signal(st.Signal).String()
			}
		}
		return res, nil
	}
	if st.Stage != stageExec {
		return res, fmt.Errorf("%w: init: %s", ErrSandbox, st.Error)
	}
	res.ExitCode = st.ExitCode
	if len(res.Stderr) > 0 && res.Stderr[len(res.Stderr)-1] != '\n' {
		res.Stderr = append(res.Stderr, '\n')
	}
	res.Stderr = append(res.Stderr, "warden sandbox: "+st.Error+"\n"...)
	return res, nil
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error {
	err := unix.Kill(-pid, unix.SIGKILL)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

// waitExited blocks until pid has exited, without reaping it.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// noteLimits reports the cgroup limits the run hit, in the Result and at
// the end of Stderr, so the model and the audit read why the program died
// rather than a bare signal.
func (res *Result) noteLimits(ev cgroupEvents, lim Limits) {
	var notes []string
	switch {
	case ev.oomKills > 0 && lim.Memory > 0:
		res.MemoryExceeded = true
		notes = append(notes, fmt.Sprintf("warden sandbox: killed: memory limit %d bytes exceeded (%d process(es) killed)", lim.Memory, ev.oomKills))
	case ev.oomKills > 0:
		// No limit of the run's own: the host or the worker's cgroup ran
		// out of memory.
		res.MemoryExceeded = true
		notes = append(notes, fmt.Sprintf("warden sandbox: killed: out of memory on the host or in the worker's cgroup (%d process(es) killed)", ev.oomKills))
	case ev.memLimitHits > 0 && lim.Memory > 0 && (res.ExitCode != 0 || res.Signal != ""):
		// The run failed at its memory limit without an OOM kill: an
		// allocation the kernel refused (a thread of the sandbox's own
		// init, a kernel stack) ended it. Say so rather than a bare exit.
		res.MemoryExceeded = true
		notes = append(notes, fmt.Sprintf("warden sandbox: failed at the memory limit %d bytes (the limit was reached %d time(s); an allocation was refused)", lim.Memory, ev.memLimitHits))
	}
	if ev.throttled > 0 {
		res.CPUThrottled = true
	}
	if ev.pidsMax > 0 {
		res.ProcessesExceeded = true
		notes = append(notes, fmt.Sprintf("warden sandbox: process limit %d reached (%d fork(s) refused)", lim.Processes, ev.pidsMax))
	}
	for _, n := range notes {
		if len(res.Stderr) > 0 && res.Stderr[len(res.Stderr)-1] != '\n' {
			res.Stderr = append(res.Stderr, '\n')
		}
		res.Stderr = append(res.Stderr, n+"\n"...)
	}
}
