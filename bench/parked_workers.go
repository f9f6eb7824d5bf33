// Worker processes of the parked-runs benchmark, and reading a process's memory from /proc.

package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wardenhq/warden/worker"
)

// memory reads VmRSS and VmHWM (peak) of this process, in bytes.
func memory() (rss, peak int64) { return procMemory("/proc/self/status") }

// procMemory reads VmRSS and VmHWM from a /proc/<pid>/status file.
func procMemory(status string) (rss, peak int64) {
	raw, err := os.ReadFile(status)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// workerProcs are the benchmark's worker processes.
type workerProcs struct {
	cmds []*exec.Cmd
	done []chan error
}

// startWorkers starts opts.Workers worker processes on cfg's task queue
// and waits until each polls.
func startWorkers(ctx context.Context, opts ParkedOptions, cfg worker.Config) (*workerProcs, error) {
	if len(opts.WorkerCommand) == 0 {
		return nil, errors.New("bench parked: --workers needs the command that starts a worker (ParkedOptions.WorkerCommand)")
	}
	if opts.TemporalAddress == "" {
		return nil, errors.New("bench parked: --workers needs the Temporal address the worker processes dial")
	}
	if opts.Workers > 1 && opts.DatabaseURL == "" {
		return nil, errors.New("bench parked: more than one worker process needs one audit for all: set --database-url to a PostgreSQL database")
	}
	b, err := json.Marshal(parkedScenario)
	if err != nil {
		return nil, err
	}
	scenarios := filepath.Join(cfg.DataDir, "parked-scenario.json")
	if err := os.WriteFile(scenarios, b, 0o600); err != nil {
		return nil, err
	}
	p := &workerProcs{}
	for i := range opts.Workers {
		args := append(slices.Clone(opts.WorkerCommand[1:]),
			"--address", opts.TemporalAddress, "--namespace", cmp.Or(opts.Namespace, "default"), "--task-queue", cfg.TaskQueue,
			"--data-dir", cfg.DataDir, "--database-url", opts.DatabaseURL, "--scenario-file", scenarios)
		if opts.CacheSize > 0 {
			args = append(args, "--workflow-cache-size", strconv.Itoa(opts.CacheSize))
		}
		logPath := filepath.Join(cfg.DataDir, fmt.Sprintf("worker-%d.log", i))
		logFile, err := os.Create(logPath)
		if err != nil {
			p.stop()
			return nil, err
		}
		cmd := exec.Command(opts.WorkerCommand[0], args...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			logFile.Close()
			p.stop()
			return nil, fmt.Errorf("start worker process %d: %w", i, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait(); logFile.Close() }()
		p.cmds, p.done = append(p.cmds, cmd), append(p.done, done)
		if err := waitReady(ctx, logPath, done); err != nil {
			p.stop()
			return nil, fmt.Errorf("worker process %d: %w", i, err)
		}
	}
	return p, nil
}

// waitReady waits for a worker process's "ready" line in its log.
func waitReady(ctx context.Context, logPath string, done chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "warden worker ready") {
			return nil
		}
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("stopped before polling (%v); its log:\n%s", err, b)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(logPath)
	return fmt.Errorf("not ready after 60s; its log:\n%s", b)
}

// memory sums VmRSS and VmHWM of the worker processes still running.
func (p *workerProcs) memory() (rss, peak int64) {
	for _, c := range p.cmds {
		r, h := procMemory(fmt.Sprintf("/proc/%d/status", c.Process.Pid))
		rss, peak = rss+r, peak+h
	}
	return rss, peak
}

// stop asks each worker process to stop (SIGTERM) and kills it after 30s.
func (p *workerProcs) stop() {
	for _, c := range p.cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for i, c := range p.cmds {
		select {
		case <-p.done[i]:
		case <-time.After(30 * time.Second):
			_ = c.Process.Kill()
			<-p.done[i]
		}
	}
	p.cmds, p.done = nil, nil
}
