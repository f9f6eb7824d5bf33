package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	tlog "go.temporal.io/sdk/log"

	"github.com/wardenhq/warden/bench"
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
ratios. Without --address it starts its own tuned dev server.`,
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
		if cfg.TemporalAddress == "" {
			srv, err := devserver.Start(cmd.Context(), devserver.Options{Logger: tlog.NewStructuredLogger(quietLogger())})
			if err != nil {
				return err
			}
			defer func() { _ = srv.Stop() }()
			opts.Client = srv.Client()
		} else {
			tc, err := worker.Dial(cmd.Context(), worker.Config{TemporalAddress: cfg.TemporalAddress, Namespace: cfg.Namespace, Logger: quietLogger()})
			if err != nil {
				return err
			}
			defer tc.Close()
			opts.Client = tc
		}
		rep, err := bench.Run(cmd.Context(), opts)
		if err != nil {
			return err
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
		if err := out.print(cmd.OutOrStdout(), rep, toAny(rep.Results),
			[]string{"MODE", "RUNS", "STEPS", "WALL", "STEPS/S", "P50 MS", "P95 MS", "P99 MS"},
			func(i int) []string {
				r := rep.Results[i]
				return []string{r.Mode, fmt.Sprint(r.Runs), fmt.Sprint(r.Steps), r.Wall.Round(time.Millisecond).String(),
					fmt.Sprintf("%.1f", r.StepsPerSec), ms(r.P50), ms(r.P95), ms(r.P99)}
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
	fs.StringVar(&modes, "modes", "governed,ungoverned,bare", "modes to measure, comma-separated")
	fs.StringVar(&cfg.TemporalAddress, "address", "", "Temporal frontend; empty starts a dev server for the benchmark")
	fs.StringVar(&cfg.Namespace, "namespace", "default", "Temporal namespace")
	fs.StringVar(&cfg.DatabaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL for the governed audit; empty uses SQLite")
	return cmd
}
