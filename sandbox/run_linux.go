// The run of the init, stage by stage: start it, hand over the config,
// wait for it and its output, and read its exit; the preparing stage is in
// prepare_linux.go, the report in report_linux.go.

package sandbox

import (
	"bytes"
	"context"
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

// probe starts the init once without a target, proving SelfPath acts as
// the sandbox init.
func (r *Runner) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A workspace of its own: a root worker hands the workspace to the
	// sandbox's host id, never the host's /tmp.
	dir, err := os.MkdirTemp("", "warden-self-test-")
	if err != nil {
		return fmt.Errorf("%w: self-test: %w", ErrSandbox, err)
	}
	defer os.RemoveAll(dir)
	env, err := buildEnv(dir, nil)
	if err != nil {
		return err
	}
	p := runParams{
		dir:    dir,
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

// run runs the init once, stage by stage: the run's cgroup, the
// descriptors passed to the init and its config, the pipes, the start of
// the init (startInit), the hand-over of the config (handOver), the wait
// for the init and its output (wait), and the Result with what the init
// reported on the status pipe (report).
func (r *Runner) run(ctx context.Context, p runParams) (res Result, err error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("%w: run not started: %w", ErrSandbox, err)
	}
	// The run's cgroup, made before the init starts and removed once it
	// is reaped; what it counted is reported on the way out.
	cg, err := r.newRunCgroup(p.limits)
	if err != nil {
		return Result{}, err
	}
	if cg != nil {
		defer func() {
			cg.close()
			res.noteLimits(cg.events, p.limits)
		}()
	}
	p.config.Protocol = initProtocol
	fds, err := r.passDescriptors(&p)
	if err != nil {
		return Result{}, err
	}
	defer closeFiles(fds.mounts...)
	config, err := encodeConfig(p.config)
	if err != nil {
		return Result{}, err
	}
	pp, err := newPipes()
	if err != nil {
		return Result{}, fmt.Errorf("%w: pipes: %w", ErrSandbox, err)
	}
	defer pp.closeAll()

	runCtx, cancel := context.WithTimeoutCause(ctx, p.limits.Timeout, errTimeout)
	defer cancel()

	in, err := r.startInit(runCtx, p, fds, pp, cg)
	if err != nil {
		return Result{}, err
	}
	status, err := in.handOver(config, cg)
	if err != nil {
		return Result{}, err
	}
	duration, err := in.wait(cg)
	if err != nil {
		return Result{}, err
	}
	res = in.result(duration)
	cause := in.kill.cause()
	res.TimedOut = errors.Is(cause, errTimeout)
	if cause != nil && !res.TimedOut {
		return res, fmt.Errorf("%w: run interrupted: %w", ErrSandbox, cause)
	}
	if res.TimedOut {
		return res, nil
	}
	return r.report(res, status)
}

// groupKiller orders the kill of the process group against reaping the
// group leader: the group is signalled only while the leader is alive or
// a zombie, so its ID cannot have been reused.
type groupKiller struct {
	mu       sync.Mutex
	reaped   bool
	killedBy error
}

// cancel is the command's Cancel: it kills the group unless the leader is
// reaped, and keeps why (ctx's cause).
func (k *groupKiller) cancel(ctx context.Context, cmd *exec.Cmd) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.reaped {
		return os.ErrProcessDone
	}
	k.killedBy = context.Cause(ctx)
	return killGroup(cmd.Process.Pid)
}

// killForReap kills the group led by pid a last time; from then on the
// leader counts as reaped, and the caller reaps it.
func (k *groupKiller) killForReap(pid int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := killGroup(pid)
	k.reaped = true
	return err
}

// cause is why cancel killed the group, or nil.
func (k *groupKiller) cause() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killedBy
}

// initRun is a started init: its command, pipes and output.
type initRun struct {
	cmd            *exec.Cmd
	pid            int
	pp             *pipes
	kill           *groupKiller
	stdout, stderr *capture
	start          time.Time
}

// initCommand is the command that starts the init: argv, workspace,
// environment, standard streams, the descriptors passed, the clone
// attributes (isolated mode's namespaces, or a new session), the run's
// cgroup and the kill of the group when ctx ends.
func (r *Runner) initCommand(ctx context.Context, p runParams, fds *initDescriptors, pp *pipes, cg *runCgroupOnce, kill *groupKiller) *exec.Cmd {
	cmd := exec.CommandContext(ctx, fds.initPath, initArg)
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
	cmd.ExtraFiles = fds.extraFiles(pp.configR, pp.statusW, r.exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid: true,
		// Kill the init (and so the target) if the worker thread that
		// started it dies; see go.dev/issue/27505.
		Pdeathsig: syscall.SIGKILL,
	}
	if r.iso != nil {
		cmd.SysProcAttr = r.iso.sysProcAttr()
	}
	if cg != nil && cg.rc.fd != nil {
		// clone3(CLONE_INTO_CGROUP): the init starts inside the cgroup.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cg.rc.fd.Fd())
	}
	cmd.Cancel = func() error { return kill.cancel(ctx, cmd) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// startInit starts the init, closes the parent's copies of the child's
// pipe ends and starts reading its output.
func (r *Runner) startInit(ctx context.Context, p runParams, fds *initDescriptors, pp *pipes, cg *runCgroupOnce) (*initRun, error) {
	in := &initRun{pp: pp, kill: &groupKiller{}}
	in.cmd = r.initCommand(ctx, p, fds, pp, cg, in.kill)
	in.start = time.Now()
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start init: %w", ErrSandbox, err)
	}
	in.pid = in.cmd.Process.Pid
	pp.closeChildEnds()

	in.stdout, in.stderr = newCapture(p.limits.MaxOutputBytes), newCapture(p.limits.MaxOutputBytes)
	go in.stdout.drain(pp.stdoutR)
	go in.stderr.drain(pp.stderrR)
	return in, nil
}

// initReport is what the status pipe carried, and how writing the config
// and reading the status went.
type initReport struct {
	status            []byte
	readErr, writeErr error
}

// handOver sends the config, then reads the init's status until exec
// closes it (or the init exits). Both end at the latest when the Timeout
// kills the group. The error is set only when the init could not be moved
// into the run's cgroup; the init is killed and reaped then.
func (in *initRun) handOver(config []byte, cg *runCgroupOnce) (initReport, error) {
	var rep initReport
	_, rep.writeErr = in.pp.configW.Write(config)
	if cg != nil {
		// The init reads the config and builds its view meanwhile, but runs
		// nothing of the program's before the pipe closes: the program
		// starts inside the cgroup. ESRCH: the init is gone already, and
		// its status says why.
		if err := cg.rc.join(in.pid); err != nil && !errors.Is(err, unix.ESRCH) {
			in.kill.killForReap(in.pid)
			in.cmd.Wait()
			return rep, fmt.Errorf("%w: cgroup: %w", ErrSandbox, err)
		}
	}
	in.pp.configW.Close()
	rep.status, rep.readErr = io.ReadAll(io.LimitReader(in.pp.statusR, maxStatusBytes))
	return rep, nil
}

// wait waits for the init to exit and returns how long it ran; it kills
// what the program left behind, reaps the init, closes the run's cgroup
// and waits (bounded) for the output. The error is set only when the init
// could not be waited for.
func (in *initRun) wait(cg *runCgroupOnce) (time.Duration, error) {
	exitErr := waitExited(in.pid)
	duration := time.Since(in.start)
	// Kill whatever the program left behind in its group; the leader is
	// not reaped yet, so the group ID is still ours.
	groupErr := in.kill.killForReap(in.pid)
	_ = in.cmd.Wait() // the exit status is read from ProcessState below
	// Kill what is left in the cgroup (in process mode: also what left the
	// process group), read its counters and remove it.
	cg.close()
	if in.cmd.ProcessState == nil {
		return 0, fmt.Errorf("%w: wait for init: %w", ErrSandbox, errors.Join(exitErr, groupErr))
	}

	// The group is dead, so the output pipes reach EOF unless a process
	// escaped the group (setsid); do not wait for those forever.
	timer := time.AfterFunc(waitDelay, func() {
		in.pp.stdoutR.SetReadDeadline(time.Now())
		in.pp.stderrR.SetReadDeadline(time.Now())
	})
	<-in.stdout.done
	<-in.stderr.done
	timer.Stop()
	return duration, nil
}

// result is the Result of the reaped init: its output, duration and exit
// status.
func (in *initRun) result(duration time.Duration) Result {
	res := Result{
		Stdout:          in.stdout.buf,
		Stderr:          in.stderr.buf,
		StdoutTruncated: in.stdout.truncated(),
		StderrTruncated: in.stderr.truncated(),
		Duration:        duration,
	}
	ws, _ := in.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		res.Signal = signalName(ws.Signal())
		res.ExitCode = 128 + int(ws.Signal())
	default:
		res.ExitCode = ws.ExitStatus()
	}
	return res
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
