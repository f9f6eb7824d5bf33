// Package bench measures Warden's own cost per step: N concurrent runs of M
// steps each through the real dev server, worker, sandbox, policy and audit,
// with the scripted model (no model latency), against two baselines in the
// same invocation on the same server — the same runs with governance off
// (no policy, no audit; sandbox unchanged) and a bare Temporal loop (a
// plain workflow calling a model activity and a tool activity).
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/worker"
)

// Modes, in the order they run.
const (
	ModeGoverned   = "governed"
	ModeUngoverned = "ungoverned"
	ModeBare       = "bare"
)

// Options configure a benchmark.
type Options struct {
	Client  client.Client
	Runs    int
	Steps   int
	Modes   []string
	DataDir string
	// DatabaseURL puts the governed audit in PostgreSQL; empty uses SQLite.
	DatabaseURL string
	Logger      *slog.Logger
	// ProfileDir, when set, receives a CPU profile of each mode's timed
	// part: <ProfileDir>/<mode>.pprof (the last round's).
	ProfileDir string
	// Rounds repeats the modes in turn (governed, ungoverned, bare,
	// governed, ...) so that a change in the machine's load hits every
	// mode alike; each mode's figures pool all its rounds. Default 1.
	Rounds int
}

// Result is one mode's measurement.
type Result struct {
	Mode        string        `json:"mode"`
	Runs        int           `json:"runs"`
	Steps       int           `json:"steps"`
	Wall        time.Duration `json:"wall_ns"`
	StepsPerSec float64       `json:"steps_per_sec"`
	P50         time.Duration `json:"p50_ns"`
	P95         time.Duration `json:"p95_ns"`
	P99         time.Duration `json:"p99_ns"`
	// CPU is the CPU time used per step, by process.
	CPU CPU `json:"cpu_per_step"`
}

// Report is every mode's result and the ratios of step latency (p50).
type Report struct {
	Results []Result           `json:"results"`
	Ratios  map[string]float64 `json:"ratios"`
}

// Run measures each mode in turn.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.Runs <= 0 || opts.Steps <= 0 {
		return Report{}, errors.New("bench: runs and steps must be positive")
	}
	if len(opts.Modes) == 0 {
		opts.Modes = []string{ModeGoverned, ModeUngoverned, ModeBare}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	var rep Report
	pooled := map[string]*measurement{}
	for range max(opts.Rounds, 1) {
		for _, mode := range opts.Modes {
			m, err := runMode(ctx, opts, mode)
			if err != nil {
				return rep, fmt.Errorf("bench %s: %w", mode, err)
			}
			if p := pooled[mode]; p != nil {
				p.add(m)
			} else {
				pooled[mode] = &m
			}
		}
	}
	for _, mode := range opts.Modes {
		rep.Results = append(rep.Results, pooled[mode].result(mode, opts.Runs, opts.Steps))
	}
	rep.Ratios = map[string]float64{}
	byMode := map[string]Result{}
	for _, r := range rep.Results {
		byMode[r.Mode] = r
	}
	if g, ok := byMode[ModeGoverned]; ok {
		if u, ok := byMode[ModeUngoverned]; ok && u.P50 > 0 {
			rep.Ratios["governed/ungoverned p50"] = float64(g.P50) / float64(u.P50)
			rep.Ratios["governed/ungoverned throughput"] = u.StepsPerSec / g.StepsPerSec
		}
		if u, ok := byMode[ModeUngoverned]; ok && u.CPU.Total() > 0 {
			rep.Ratios["governed/ungoverned cpu"] = float64(g.CPU.Total()) / float64(u.CPU.Total())
		}
		if b, ok := byMode[ModeBare]; ok && b.CPU.Total() > 0 {
			rep.Ratios["governed/bare cpu"] = float64(g.CPU.Total()) / float64(b.CPU.Total())
		}
		if b, ok := byMode[ModeBare]; ok && b.P50 > 0 {
			rep.Ratios["governed/bare p50"] = float64(g.P50) / float64(b.P50)
			rep.Ratios["governed/bare throughput"] = b.StepsPerSec / g.StepsPerSec
		}
	}
	return rep, nil
}

// measurement is what one or more rounds of a mode measured.
type measurement struct {
	latencies []time.Duration
	wall      time.Duration
	steps     int
	cpu       CPU // totals, not per step
}

func (m *measurement) add(o measurement) {
	m.latencies = append(m.latencies, o.latencies...)
	m.wall += o.wall
	m.steps += o.steps
	m.cpu.Worker += o.cpu.Worker
	m.cpu.Temporal += o.cpu.Temporal
	m.cpu.Postgres += o.cpu.Postgres
}

func (m *measurement) result(mode string, runs, steps int) Result {
	n := time.Duration(max(m.steps, 1))
	return Result{
		Mode: mode, Runs: runs, Steps: steps, Wall: m.wall,
		StepsPerSec: float64(m.steps) / m.wall.Seconds(),
		P50:         percentile(m.latencies, 0.50), P95: percentile(m.latencies, 0.95), P99: percentile(m.latencies, 0.99),
		CPU: CPU{Worker: m.cpu.Worker / n, Temporal: m.cpu.Temporal / n, Postgres: m.cpu.Postgres / n},
	}
}

func runMode(ctx context.Context, opts Options, mode string) (measurement, error) {
	dir, err := os.MkdirTemp(opts.DataDir, "bench-"+mode+"-")
	if err != nil {
		return measurement{}, err
	}
	cfg := worker.Config{DataDir: dir, TaskQueue: "bench-" + mode + "-" + fmt.Sprint(time.Now().UnixNano()), Logger: opts.Logger}
	if err := signedSeals(&cfg); err != nil {
		return measurement{}, err
	}
	meter := cpuMeter{}
	if mode == ModeGoverned && opts.DatabaseURL != "" {
		cfg.DatabaseURL = withAppName(opts.DatabaseURL)
		if isLocal(cfg.DatabaseURL) {
			meter.dsn = cfg.DatabaseURL
		}
	}
	deps, err := worker.Build(ctx, cfg)
	if err != nil {
		return measurement{}, err
	}
	defer deps.Close()
	if err := deps.Scripted.Add(benchScenario); err != nil {
		return measurement{}, err
	}
	w := sdkworker.New(opts.Client, cfg.TaskQueue, sdkworker.Options{})
	switch mode {
	case ModeGoverned:
		worker.Register(w, deps)
	case ModeUngoverned:
		deps.Activities.Policy = allowAll{}
		deps.Activities.ModelPolicy = nil
		deps.Activities.Audit = discard{}
		worker.Register(w, deps)
	case ModeBare:
		w.RegisterWorkflowWithOptions(BareLoop, workflow.RegisterOptions{Name: "BareLoop"})
		w.RegisterActivityWithOptions(&bareActivities{deps: deps.Activities, workspace: dir}, activity.RegisterOptions{})
	default:
		return measurement{}, fmt.Errorf("unknown mode %q (want %s, %s or %s)", mode, ModeGoverned, ModeUngoverned, ModeBare)
	}
	if err := w.Start(); err != nil {
		return measurement{}, err
	}
	defer w.Stop()
	// One untimed run warms the worker's caches, the sandbox and the server.
	if err := startAndWait(ctx, Options{Client: opts.Client, Steps: 1}, mode, cfg.TaskQueue, cfg.TaskQueue+"-warmup"); err != nil {
		return measurement{}, fmt.Errorf("warm-up: %w", err)
	}

	ids := make([]string, opts.Runs)
	var wg sync.WaitGroup
	errs := make([]error, opts.Runs)
	stopProfile, err := startProfile(opts.ProfileDir, mode)
	if err != nil {
		return measurement{}, err
	}
	cpu0 := meter.sample(ctx)
	start := time.Now()
	for i := range opts.Runs {
		ids[i] = fmt.Sprintf("%s-%d", cfg.TaskQueue, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = startAndWait(ctx, opts, mode, cfg.TaskQueue, ids[i])
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	cpu := meter.sample(ctx).since(cpu0, 1)
	if err := stopProfile(); err != nil {
		return measurement{}, err
	}
	if err := errors.Join(errs...); err != nil {
		return measurement{}, err
	}
	var lat []time.Duration
	for _, id := range ids {
		l, err := stepLatencies(ctx, opts.Client, id)
		if err != nil {
			return measurement{}, err
		}
		lat = append(lat, l...)
	}
	return measurement{latencies: lat, wall: wall, steps: opts.Runs * opts.Steps, cpu: cpu}, nil
}

func startAndWait(ctx context.Context, opts Options, mode, queue, id string) error {
	so := client.StartWorkflowOptions{ID: id, TaskQueue: queue}
	var run client.WorkflowRun
	var err error
	if mode == ModeBare {
		run, err = opts.Client.ExecuteWorkflow(ctx, so, "BareLoop", BareInput{Steps: opts.Steps})
	} else {
		run, err = opts.Client.ExecuteWorkflow(ctx, so, warden.WorkflowAgentRun, warden.RunRequest{
			Tenant: "bench", Requester: "bench", Goal: "benchmark", Model: "scripted/" + benchScenario.Name,
			Budget: warden.Budget{MaxSteps: opts.Steps, MaxTokens: 1 << 30},
		})
	}
	if err != nil {
		return err
	}
	return run.Get(ctx, nil)
}

// stepLatencies are the times between consecutive model-activity
// schedules of a run: one plan-act step each.
func stepLatencies(ctx context.Context, c client.Client, id string) ([]time.Duration, error) {
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var times []time.Time
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && slices.Contains([]string{"Plan", "BareModel"}, a.GetActivityType().GetName()) {
			times = append(times, ev.GetEventTime().AsTime())
		}
	}
	var out []time.Duration
	for i := 1; i < len(times); i++ {
		out = append(out, times[i].Sub(times[i-1]))
	}
	return out, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// allowAll is the ungoverned baseline's policy: everything runs.
type allowAll struct{}

func (allowAll) Decide(context.Context, warden.PolicyInput) (warden.Decision, error) {
	return warden.Decision{Allow: true, Risk: warden.RiskLow, Quorum: 1, Obligations: warden.Obligations{TimeoutSeconds: 30, MaxOutputBytes: 65536}}, nil
}

// discard is the ungoverned baseline's audit: nothing is written.
type discard struct{}

func (discard) Append(context.Context, ...warden.AuditEvent) error { return nil }
func (discard) Has(context.Context, string) (bool, error)          { return false, nil }

var _ activities.Audit = discard{}

// startProfile starts a CPU profile of mode in dir; the function it returns
// stops it. Without dir it does nothing.
func startProfile(dir, mode string) (func() error, error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(filepath.Join(dir, mode+".pprof"))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// signedSeals gives a benchmark worker what production should run with: a
// seal key of its own and an anchor file, both in its data directory.
func signedSeals(cfg *worker.Config) error {
	priv, _, err := audit.GenerateSealKey("bench", time.Now())
	if err != nil {
		return err
	}
	cfg.AuditSealKey = filepath.Join(cfg.DataDir, "seal.key")
	cfg.AuditAnchor = filepath.Join(cfg.DataDir, "anchor.jsonl")
	return os.WriteFile(cfg.AuditSealKey, priv, 0o600)
}
