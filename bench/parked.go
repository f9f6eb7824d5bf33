package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/wardenhq/warden"
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
	Logger      *slog.Logger
}

// ParkedReport is what the parked-runs benchmark measured.
type ParkedReport struct {
	Runs      int `json:"runs"`
	CacheSize int `json:"cache_size"`
	// ParkWall is the time from the first start until every run waited
	// for approval.
	ParkWall time.Duration `json:"park_wall_ns"`
	// RSS is this process's resident memory (worker and client) once
	// every run is parked; PeakRSS the most it reached by then; HeapInUse
	// the Go heap in use after a collection.
	RSS       int64 `json:"rss_bytes"`
	PeakRSS   int64 `json:"peak_rss_bytes"`
	HeapInUse int64 `json:"heap_in_use_bytes"`
	// ApproveWall is the time from the first approval until every run
	// completed; ApprovalsPerSec is Runs / ApproveWall.
	ApproveWall     time.Duration `json:"approve_wall_ns"`
	ApprovalsPerSec float64       `json:"approvals_per_sec"`
	Completed       int           `json:"completed"`
	// EndPeakRSS is the most resident memory this process reached over
	// the whole benchmark, approvals included.
	EndPeakRSS int64 `json:"end_peak_rss_bytes"`
}

// Parked starts Runs runs that each wait for a refund approval, measures
// the worker's memory once all are parked, then approves them all and
// measures how fast they complete.
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

	wc := warden.NewClient(opts.Client, cfg.TaskQueue)
	ids := make([]string, opts.Runs)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", cfg.TaskQueue, i)
	}
	rep := ParkedReport{Runs: opts.Runs, CacheSize: opts.CacheSize}
	start := time.Now()
	if err := each(ctx, ids, conc, func(ctx context.Context, id string) error {
		_, err := wc.Start(ctx, warden.RunRequest{
			Tenant: "bench", Requester: "bench", Goal: "refund order P-1", Model: llm.ScriptedModelPrefix + parkedScenario.Name,
			Budget: warden.Budget{MaxSteps: 4, MaxTokens: 1 << 20},
		}, warden.StartOptions{ID: id})
		return err
	}); err != nil {
		return rep, fmt.Errorf("start: %w", err)
	}
	if err := waitParked(ctx, opts.Client, cfg.TaskQueue, opts.Runs); err != nil {
		return rep, err
	}
	rep.ParkWall = time.Since(start)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapInUse = int64(ms.HeapInuse)
	rep.RSS, rep.PeakRSS = memory()

	var completed atomic.Int64
	start = time.Now()
	err = each(ctx, ids, conc, func(ctx context.Context, id string) error {
		// A query needs the run in a worker's cache or replayed: on a
		// loaded machine the first one can time out; asking again is safe.
		var pending []warden.ApprovalRequest
		var err error
		for attempt := range 8 {
			if pending, err = wc.PendingApprovals(ctx, id); err == nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * time.Second)
		}
		if err != nil {
			return err
		}
		if len(pending) != 1 {
			return fmt.Errorf("%s: %d pending approvals, want 1", id, len(pending))
		}
		if _, err := wc.Decide(ctx, id, warden.ApprovalDecision{RequestID: pending[0].RequestID, Decision: "approve", Approver: "alice", Reason: "benchmark"}); err != nil {
			return err
		}
		res, err := wc.Result(ctx, id)
		if err != nil {
			return err
		}
		if res.Status != warden.StatusCompleted {
			return fmt.Errorf("%s ended %s: %s", id, res.Status, res.Error)
		}
		completed.Add(1)
		return nil
	})
	rep.ApproveWall = time.Since(start)
	rep.Completed = int(completed.Load())
	// VmHWM is not monotonic as read: the kernel reports the larger of a
	// lazily updated high-water mark and the current RSS, so a peak read
	// earlier can exceed a later one. The whole run's peak is at least
	// every peak seen.
	_, end := memory()
	rep.EndPeakRSS = max(end, rep.PeakRSS)
	rep.ApprovalsPerSec = float64(rep.Completed) / rep.ApproveWall.Seconds()
	if err != nil {
		return rep, fmt.Errorf("approve: %w", err)
	}
	return rep, nil
}

// waitParked polls visibility until n runs of the queue wait for approval.
func waitParked(ctx context.Context, c client.Client, queue string, n int) error {
	q := fmt.Sprintf("TaskQueue = %q AND %s = %q", queue, warden.SearchAttrStatus, warden.SearchStatus(warden.StatusAwaitingApproval))
	deadline := time.Now().Add(time.Duration(n)*50*time.Millisecond + 2*time.Minute)
	var got int64
	for time.Now().Before(deadline) {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		if err != nil {
			return fmt.Errorf("count parked runs: %w", err)
		}
		if got = resp.GetCount(); got >= int64(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("only %d of %d runs were waiting for approval before the deadline", got, n)
}

// each calls f for every id with at most conc calls at once, and returns
// the first errors (at most five, so 10,000 failures stay readable).
func each(ctx context.Context, ids []string, conc int, f func(context.Context, string) error) error {
	sem := make(chan struct{}, conc)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, id); err != nil {
				mu.Lock()
				if len(errs) < 5 {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// memory reads VmRSS and VmHWM (peak) of this process, in bytes.
func memory() (rss, peak int64) {
	raw, err := os.ReadFile("/proc/self/status")
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
