// The report stage of a run: the Result from what the init reported on
// the status pipe, and the notes on the cgroup limits the run hit.

package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// report interprets the status pipe of a run that was not interrupted:
// the ack byte, then a report only if the init failed before or at exec
// (or, isolated, how the program ended).
func (r *Runner) report(res Result, rep initReport) (Result, error) {
	status := rep.status
	if rep.readErr != nil {
		return res, fmt.Errorf("%w: read init status: %w", ErrSandbox, rep.readErr)
	}
	if len(status) == 0 || status[0] != ackByte {
		msg := bytes.TrimSpace(res.Stderr)
		if rep.writeErr != nil {
			msg = append(msg, fmt.Sprintf(" (config: %v)", rep.writeErr)...)
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
	switch st.Stage {
	case stageExited:
		return reportExited(res, st)
	case stageExec:
		return reportExecFailed(res, st), nil
	default:
		return res, fmt.Errorf("%w: init: %s", ErrSandbox, st.Error)
	}
}

// reportExited takes the exit an isolated init reported for the program.
func reportExited(res Result, st initStatus) (Result, error) {
	// The init exits with the code it reports: a report that disagrees
	// was not written by the init alone.
	if st.ExitCode != res.ExitCode {
		return res, fmt.Errorf("%w: init status reports exit %d but the init exited %d: status channel tampered with", ErrSandbox, st.ExitCode, res.ExitCode)
	}
	res.ExitCode = st.ExitCode
	if st.Signal > 0 {
		res.Signal = signalName(syscall.Signal(st.Signal))
	}
	return res, nil
}

// reportExecFailed is the Result of a program the init could not start
// (not found, not executable): its exit code, and why at the end of
// Stderr.
func reportExecFailed(res Result, st initStatus) Result {
	res.ExitCode = st.ExitCode
	if len(res.Stderr) > 0 && res.Stderr[len(res.Stderr)-1] != '\n' {
		res.Stderr = append(res.Stderr, '\n')
	}
	res.Stderr = append(res.Stderr, "warden sandbox: "+st.Error+"\n"...)
	return res
}

// signalName is the name of sig ("SIGKILL"), or its description where
// it has none.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return sig.String()
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
