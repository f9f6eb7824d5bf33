package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/wardenhq/warden"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/llm"
	"github.com/wardenhq/warden/worker"
)

// parkedScenario asks for one refund (the policy makes it wait for a
// refund approver), then answers.
var parkedScenario = llm.Scenario{
	Name: "parked",
	Turns: []llm.Turn{
		{ToolCalls: []llm.ScriptedCall{{Name: "issue_refund", Args: []byte(`{"order_id":"P-1","amount_cents":500,"currency":"EUR","reason":"benchmark"}`)}}},
		{Content: "refunded"},
	},
}

// ParkedOptions configure the parked-runs benchmark.
type ParkedOptions struct {
	Client  client.Client
	Runs    int
	DataDir string
	// DatabaseURL puts the audit in PostgreSQL; empty uses SQLite.
	DatabaseURL string
	// CacheSize bounds the worker's workflow cache (sticky cache); zero
	// keeps the worker's default.
	CacheSize int
	// Concurrency is how many starts and approvals are in flight at once.
	// Default 50.
	Concurrency int
	// Progress, when set, receives a line every ProgressEvery (default
	// 10s) while runs park and while they are approved: counts, rate and
	// the worker's resident memory.
	Progress      io.Writer
	ProgressEvery time.Duration
	// QueryTimeout and UpdateTimeout are the approval path's
	// (wclient.PendingOptions, wclient.DecideOptions); zero keeps their defaults.
	QueryTimeout  time.Duration
	UpdateTimeout time.Duration
	// Approver names who approves; default "alice" (a refund approver of
	// the default policy).
	Approver string
	// SignalOnly approves through the Signal alone
	// (wclient.DecideOptions.SignalOnly) instead of the Update first.
	SignalOnly bool
	// Workers, when positive, runs that many worker processes on the
	// benchmark's task queue (WorkerCommand with connection flags) instead
	// of a worker in this process; the memory reported is then theirs,
	// summed. More than one needs DatabaseURL (one audit for all).
	Workers int
	// WorkerCommand starts one worker process, for example
	// {"/usr/local/bin/warden", "worker"}.
	WorkerCommand []string
	// TemporalAddress and Namespace are the worker processes' server.
	TemporalAddress string
	Namespace       string
	Logger          *slog.Logger
}

// ParkedFailure is one run the benchmark could not take through a phase.
type ParkedFailure struct {
	WorkflowID string `json:"workflow_id"`
	// Phase is "start", "park" or "approve".
	Phase string `json:"phase"`
	Error string `json:"error"`
}

// ParkedReport is what the parked-runs benchmark measured. It is filled
// as far as the benchmark got, also when it returns an error.
type ParkedReport struct {
	Runs      int `json:"runs"`
	CacheSize int `json:"cache_size"`
	// Workers is the number of worker processes; 0 means one worker in
	// the benchmark's own process.
	Workers int `json:"workers"`
	// Parked is how many runs waited for approval (at most Runs).
	Parked int `json:"parked"`
	// ParkWall is the time from the first start until every run waited
	// for approval (or the wait gave up).
	ParkWall time.Duration `json:"park_wall_ns"`
	// RSS is this process's resident memory (worker and client) once
	// every run is parked, or the worker processes' summed; PeakRSS the
	// most it reached by then; HeapInUse the Go heap in use after a
	// collection (this process only; 0 with worker processes).
	RSS       int64 `json:"rss_bytes"`
	PeakRSS   int64 `json:"peak_rss_bytes"`
	HeapInUse int64 `json:"heap_in_use_bytes"`
	// ApproveWall is the time from the first approval until every run
	// completed; ApprovalsPerSec is Completed / ApproveWall.
	ApproveWall     time.Duration `json:"approve_wall_ns"`
	ApprovalsPerSec float64       `json:"approvals_per_sec"`
	Completed       int           `json:"completed"`
	// FromMemo counts the pending requests read from the run's memo
	// because the query failed; ViaSignal the approvals sent as the
	// Signal because the Update was not completed in time.
	FromMemo  int `json:"from_memo"`
	ViaSignal int `json:"via_signal"`
	// Failed counts the runs that failed a phase; Failures lists them
	// (the first maxFailures).
	Failed   int             `json:"failed"`
	Failures []ParkedFailure `json:"failures,omitempty"`
	// EndPeakRSS is the most resident memory this process reached over
	// the whole benchmark, approvals included.
	EndPeakRSS int64 `json:"end_peak_rss_bytes"`
}

// maxFailures bounds ParkedReport.Failures, so 10,000 failures stay readable.
const maxFailures = 100

// failures collects what failed, safely from many goroutines.
type failures struct {
	mu   sync.Mutex
	n    int
	list []ParkedFailure
}

func (f *failures) add(id, phase string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.list) < maxFailures {
		f.list = append(f.list, ParkedFailure{WorkflowID: id, Phase: phase, Error: err.Error()})
	}
}

func (f *failures) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Parked starts Runs runs that each wait for a refund approval, measures
// the worker's memory once all are parked, then approves them all (the
// pending request through wclient.Client.Pending, the decision through
// DecideOrSignal) and measures how fast they complete. A run that fails
// does not stop the others: the report lists it, and the error returned
// (after the report is complete) says how many failed.
func Parked(ctx context.Context, opts ParkedOptions) (ParkedReport, error) {
	if opts.Runs <= 0 {
		return ParkedReport{}, errors.New("bench parked: runs must be positive")
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = 50
	}
	if opts.CacheSize > 0 {
		// Process-wide, and read when the worker starts.
		sdkworker.SetStickyWorkflowCacheSize(opts.CacheSize)
	}
	dir, err := os.MkdirTemp(opts.DataDir, "bench-parked-")
	if err != nil {
		return ParkedReport{}, err
	}
	cfg := worker.Config{DataDir: dir, DatabaseURL: opts.DatabaseURL, TaskQueue: "bench-parked-" + strconv.FormatInt(time.Now().UnixNano(), 10), Logger: opts.Logger}
	if err := signedSeals(&cfg); err != nil {
		return ParkedReport{}, err
	}
	mem := memory
	if opts.Workers > 0 {
		procs, err := startWorkers(ctx, opts, cfg)
		if err != nil {
			return ParkedReport{}, err
		}
		defer procs.stop()
		mem = procs.memory
	} else {
		deps, err := worker.Build(ctx, cfg)
		if err != nil {
			return ParkedReport{}, err
		}
		defer deps.Close()
		if err := deps.Scripted.Add(parkedScenario); err != nil {
			return ParkedReport{}, err
		}
		w := sdkworker.New(opts.Client, cfg.TaskQueue, sdkworker.Options{})
		worker.Register(w, deps)
		if err := w.Start(); err != nil {
			return ParkedReport{}, err
		}
		defer w.Stop()
	}
	rssMB := func() string {
		rss, _ := mem()
		return fmt.Sprintf("%.0f", float64(rss)/(1<<20))
	}

	wc := wclient.New(opts.Client, cfg.TaskQueue)
	ids := make([]string, opts.Runs)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", cfg.TaskQueue, i)
	}
	rep := ParkedReport{Runs: opts.Runs, CacheSize: opts.CacheSize, Workers: opts.Workers}
	var failed failures
	every := cmp.Or(opts.ProgressEvery, 10*time.Second)

	var started, parked atomic.Int64
	start := time.Now()
	stop := progress(opts.Progress, every, func(elapsed time.Duration) string {
		p := parked.Load()
		return fmt.Sprintf("parking: %d/%d started, %d parked, %d failed, %.1f parked/s, worker RSS %s MB, %s",
			started.Load(), opts.Runs, p, failed.count(), float64(p)/elapsed.Seconds(), rssMB(), elapsed.Round(time.Second))
	})
	ok := each(ctx, ids, conc, func(ctx context.Context, id string) error {
		_, err := wc.Start(ctx, warden.RunRequest{
			Tenant: "bench", Requester: "bench", Goal: "refund order P-1", Model: llm.ScriptedModelPrefix + parkedScenario.Name,
			Budget: warden.Budget{MaxSteps: 4, MaxTokens: 1 << 20},
		}, wclient.StartOptions{ID: id})
		if err != nil {
			failed.add(id, "start", err)
			return err
		}
		started.Add(1)
		return nil
	})
	if err := waitParked(ctx, opts.Client, cfg.TaskQueue, len(ok), &parked); err != nil {
		failed.add("", "park", err)
	}
	stop()
	rep.Parked = int(parked.Load())
	rep.ParkWall = time.Since(start)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if opts.Workers == 0 {
		rep.HeapInUse = int64(ms.HeapInuse)
	}
	rep.RSS, rep.PeakRSS = mem()

	var decided, completed, fromMemo, viaSignal atomic.Int64
	start = time.Now()
	stop = progress(opts.Progress, every, func(elapsed time.Duration) string {
		c := completed.Load()
		return fmt.Sprintf("approving: %d/%d decided, %d completed, %d failed, %d read from the memo, %d via the Signal, %.1f completed/s, worker RSS %s MB, %s",
			decided.Load(), len(ok), c, failed.count(), fromMemo.Load(), viaSignal.Load(), float64(c)/elapsed.Seconds(), rssMB(), elapsed.Round(time.Second))
	})
	each(ctx, ok, conc, func(ctx context.Context, id string) error {
		err := approve(ctx, wc, opts, id, &fromMemo, &viaSignal, &decided)
		if err != nil {
			failed.add(id, "approve", err)
			return err
		}
		completed.Add(1)
		return nil
	})
	stop()
	rep.ApproveWall = time.Since(start)
	rep.Completed = int(completed.Load())
	rep.FromMemo, rep.ViaSignal = int(fromMemo.Load()), int(viaSignal.Load())
	// VmHWM is not monotonic as read: the kernel reports the larger of a
	// lazily updated high-water mark and the current RSS, so a peak read
	// earlier can exceed a later one. The whole run's peak is at least
	// every peak seen.
	_, end := mem()
	rep.EndPeakRSS = max(end, rep.PeakRSS)
	rep.ApprovalsPerSec = float64(rep.Completed) / rep.ApproveWall.Seconds()
	rep.Failed, rep.Failures = failed.n, failed.list
	if n := failed.count(); n > 0 {
		return rep, fmt.Errorf("bench parked: %d of %d runs failed (%d completed); see the failure list", n, opts.Runs, rep.Completed)
	}
	return rep, nil
}

// approve reads id's pending request the way an approver does (the query,
// or the memo when no worker answers), approves it (the Update, or the
// Signal when no worker completes the Update in time) and waits for the
// run to complete.
func approve(ctx context.Context, wc *wclient.Client, opts ParkedOptions, id string, fromMemo, viaSignal, decided *atomic.Int64) error {
	var pending wclient.PendingResult
	var err error
	for attempt := range 3 { // the memo read needs only the server; retry its hiccups
		if pending, err = wc.Pending(ctx, id, wclient.PendingOptions{QueryTimeout: opts.QueryTimeout}); err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
	if err != nil {
		return err
	}
	if pending.Source == wclient.PendingSourceMemo {
		fromMemo.Add(1)
	}
	if len(pending.Requests) != 1 {
		return fmt.Errorf("%d pending approvals (from the %s), want 1", len(pending.Requests), pending.Source)
	}
	res, err := wc.DecideOrSignal(ctx, id, warden.ApprovalDecision{RequestID: pending.Requests[0].RequestID, Decision: "approve", Approver: cmp.Or(opts.Approver, "alice"), Reason: "benchmark"},
		wclient.DecideOptions{UpdateTimeout: opts.UpdateTimeout, QueryTimeout: opts.QueryTimeout, SignalOnly: opts.SignalOnly})
	if err != nil {
		return err
	}
	decided.Add(1)
	if res.Via == wclient.DecidedViaSignal {
		viaSignal.Add(1)
	}
	out, err := wc.Result(ctx, id)
	if err != nil {
		return err
	}
	if out.Status != warden.StatusCompleted {
		return fmt.Errorf("ended %s: %s", out.Status, out.Error)
	}
	return nil
}
