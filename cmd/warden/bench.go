package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/wardenhq/warden/bench"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/worker"
)

func newBenchCmd() *cobra.Command {
	var (
		cfg   worker.Config
		opts  bench.Options
		modes string
	)
	cmd := &cobra.Command{
		Use:   "bench [--runs N] [--steps M]",
		Short: "Measure Warden's cost per step against an ungoverned run and a bare Temporal loop, in one invocation",
		Long: `bench drives N concurrent runs of M steps each (scripted model: zero model latency) in three
modes on the same server: governed (policy, audit, approvals bookkeeping, sandbox), ungoverned
(the same runs with policy and audit off; sandbox unchanged) and bare (a plain workflow calling a
model activity and a tool activity). It reports steps/s and p50/p95/p99 step latency and the
ratios, and the CPU each mode used per step in this process (worker), the dev server it started
and the local PostgreSQL backends of the governed audit: on a shared machine the CPU ratios hold
where latency does not. The modes run in turn, --rounds times. Without --address it starts its
own tuned dev server.`,
		Args: cobra.NoArgs,
	}
	out := outputFlag(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.validate(); err != nil {
			return err
		}
		opts.Modes = strings.Split(modes, ",")
		opts.DatabaseURL = cfg.DatabaseURL
		opts.Logger = quietLogger()
		dir, err := os.MkdirTemp("", "warden-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts.DataDir = dir
		tc, _, closeClient, err := benchClient(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		defer closeClient()
		opts.Client = tc
		rep, err := bench.Run(cmd.Context(), opts)
		if err != nil {
			return err
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
		cpu := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }
		if err := out.print(cmd.OutOrStdout(), rep, toAny(rep.Results),
			[]string{"MODE", "RUNS", "STEPS", "WALL", "STEPS/S", "P50 MS", "P95 MS", "P99 MS", "CPU MS/STEP", "WORKER", "TEMPORAL", "POSTGRES"},
			func(i int) []string {
				r := rep.Results[i]
				return []string{r.Mode, fmt.Sprint(r.Runs), fmt.Sprint(r.Steps), r.Wall.Round(time.Millisecond).String(),
					fmt.Sprintf("%.1f", r.StepsPerSec), ms(r.P50), ms(r.P95), ms(r.P99),
					cpu(r.CPU.Total()), cpu(r.CPU.Worker), cpu(r.CPU.Temporal), cpu(r.CPU.Postgres)}
			}); err != nil {
			return err
		}
		if out.format == "table" {
			names := make([]string, 0, len(rep.Ratios))
			for k := range rep.Ratios {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %.2f\n", k, rep.Ratios[k])
			}
		}
		return nil
	}
	fs := cmd.Flags()
	fs.IntVar(&opts.Runs, "runs", 20, "concurrent runs per mode")
	fs.IntVar(&opts.Steps, "steps", 10, "steps (model call + tool call) per run")
	fs.IntVar(&opts.Rounds, "rounds", 3, "repeat the modes in turn this many times; each mode pools its rounds")
	fs.StringVar(&modes, "modes", "governed,ungoverned,bare", "modes to measure, comma-separated")
	fs.StringVar(&cfg.TemporalAddress, "address", "", "Temporal frontend; empty starts a dev server for the benchmark")
	fs.StringVar(&cfg.Namespace, "namespace", "default", "Temporal namespace")
	fs.StringVar(&opts.ProfileDir, "cpuprofile-dir", "", "write a CPU profile of each mode's timed part to DIR/<mode>.pprof")
	fs.StringVar(&cfg.DatabaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL for the governed audit; empty uses SQLite")
	cmd.AddCommand(newBenchParkedCmd())
	return cmd
}

// benchClient connects to cfg.TemporalAddress, or starts a dev server when
// it is empty; it returns the server's address, and a function that closes
// what it opened.
func benchClient(ctx context.Context, cfg worker.Config) (client.Client, string, func(), error) {
	if cfg.TemporalAddress == "" {
		srv, err := devserver.Start(ctx, devserver.Options{Logger: tlog.NewStructuredLogger(quietLogger())})
		if err != nil {
			return nil, "", nil, err
		}
		return srv.Client(), srv.Address, func() { _ = srv.Stop() }, nil
	}
	tc, err := worker.Dial(ctx, worker.Config{TemporalAddress: cfg.TemporalAddress, Namespace: cfg.Namespace, Logger: quietLogger()})
	if err != nil {
		return nil, "", nil, err
	}
	return tc, cfg.TemporalAddress, tc.Close, nil
}

func newBenchParkedCmd() *cobra.Command {
	var (
		cfg   worker.Config
		opts  bench.ParkedOptions
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "parked [--runs N] [--cache-size C]",
		Short: "Park N runs on an approval, measure the worker's memory, then approve them all and measure the rate",
		Long: `parked starts N runs that each ask for a refund and wait for approval, with the worker's workflow
cache bounded to --cache-size, and reports the worker process's resident memory once all are
parked. Then it approves every run as an approver would (the pending request from the query, or
from the run's memo when no worker answers in --query-timeout; the approve Update, or the Signal
when no worker completes it in --update-timeout), waits for the result, with --concurrency in
flight, and reports approvals processed per second. It prints progress on stderr every
--progress-every; a run that fails does not stop the others: the table is printed, then the
failures (which run, which phase, what error), then it exits non-zero. Without --address it
starts its own dev server.`,
		Args: cobra.NoArgs,
	}
	out := outputFlag(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.validate(); err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "warden-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		tc, addr, closeClient, err := benchClient(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		defer closeClient()
		opts.Client, opts.DataDir, opts.DatabaseURL, opts.Logger = tc, dir, cfg.DatabaseURL, quietLogger()
		if opts.Workers > 0 {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("--workers: find this warden binary to start workers with: %w", err)
			}
			opts.WorkerCommand, opts.TemporalAddress, opts.Namespace = []string{self, "worker"}, addr, cfg.Namespace
		}
		if !quiet {
			opts.Progress = cmd.ErrOrStderr()
		}
		rep, runErr := bench.Parked(cmd.Context(), opts)
		if rep.Runs == 0 { // nothing ran: no table to print
			return runErr
		}
		mb := func(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }
		if err := out.print(cmd.OutOrStdout(), rep, []any{rep},
			[]string{"RUNS", "WORKERS", "CACHE", "PARKED", "PARKED IN", "RSS MB", "PEAK RSS MB", "HEAP MB", "APPROVED IN", "APPROVALS/S",
				"COMPLETED", "FAILED", "FROM MEMO", "VIA SIGNAL", "END PEAK RSS MB"},
			func(int) []string {
				return []string{fmt.Sprint(rep.Runs), fmt.Sprint(max(rep.Workers, 1)), fmt.Sprint(rep.CacheSize), fmt.Sprint(rep.Parked), rep.ParkWall.Round(time.Millisecond).String(),
					mb(rep.RSS), mb(rep.PeakRSS), mb(rep.HeapInUse), rep.ApproveWall.Round(time.Millisecond).String(),
					fmt.Sprintf("%.1f", rep.ApprovalsPerSec), fmt.Sprint(rep.Completed), fmt.Sprint(rep.Failed),
					fmt.Sprint(rep.FromMemo), fmt.Sprint(rep.ViaSignal), mb(rep.EndPeakRSS)}
			}); err != nil {
			return err
		}
		if len(rep.Failures) > 0 {
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "\n%d failed (the first %d):\n", rep.Failed, len(rep.Failures))
			for _, f := range rep.Failures {
				fmt.Fprintf(w, "  %s %s: %s\n", f.Phase, cmpOr(f.WorkflowID, "(all runs)"), f.Error)
			}
		}
		return runErr
	}
	fs := cmd.Flags()
	fs.IntVar(&opts.Runs, "runs", 1000, "runs to park")
	fs.IntVar(&opts.CacheSize, "cache-size", worker.DefaultWorkflowCacheSize, "workflow cache size of the worker")
	fs.IntVar(&opts.Concurrency, "concurrency", 50, "starts and approvals in flight at once")
	fs.DurationVar(&opts.ProgressEvery, "progress-every", 10*time.Second, "how often to print progress (counts, rate, worker RSS) on stderr")
	fs.IntVar(&opts.Workers, "workers", 0, "run this many `warden worker` processes on the benchmark's task queue instead of a worker in this process "+
		"(memory is then theirs, summed); more than one needs --database-url")
	fs.StringVar(&opts.Approver, "approver", "alice", "who approves (the default policy lets alice, bob and carol approve refunds)")
	fs.BoolVar(&opts.SignalOnly, "signal-only", false, "approve through the Signal alone (checked against the pending request first), not the Update")
	fs.BoolVar(&quiet, "quiet", false, "print no progress lines")
	fs.DurationVar(&opts.QueryTimeout, "query-timeout", wclient.DefaultQueryTimeout, "how long to wait for the pending query before reading the run's memo")
	fs.DurationVar(&opts.UpdateTimeout, "update-timeout", wclient.DefaultUpdateTimeout, "how long to wait for the approve Update before sending the Signal")
	fs.StringVar(&cfg.TemporalAddress, "address", "", "Temporal frontend; empty starts a dev server for the benchmark")
	fs.StringVar(&cfg.Namespace, "namespace", "default", "Temporal namespace")
	fs.StringVar(&cfg.DatabaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL for the audit; empty uses SQLite")
	return cmd
}
