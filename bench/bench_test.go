package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/bench"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/tools"
)

func TestMain(m *testing.M) {
	tools.Reexec()
	os.Exit(m.Run())
}

// TestBenchSmoke keeps `warden bench` from rotting: a tiny run of every
// mode completes and reports sane numbers (no speed is asserted).
func TestBenchSmoke(t *testing.T) {
	srv := testenv.DevServer(t)
	rep, err := bench.Run(context.Background(), bench.Options{Client: srv.Client(), Runs: 2, Steps: 3, Rounds: 2, DataDir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, rep.Results, 3)
	for _, r := range rep.Results {
		require.Equal(t, 3, r.Steps, r.Mode)
		require.Positive(t, r.CPU.Worker, r.Mode)
		require.Positive(t, r.CPU.Temporal, r.Mode, "the dev server's CPU is read from /proc")
		require.Zero(t, r.CPU.Postgres, r.Mode, "no PostgreSQL in this run")
		require.Positive(t, r.StepsPerSec, r.Mode)
		require.Positive(t, r.P50, r.Mode)
		require.GreaterOrEqual(t, r.P99, r.P50, r.Mode)
	}
	require.Contains(t, rep.Ratios, "governed/ungoverned p50")
	require.Contains(t, rep.Ratios, "governed/bare p50")
	require.Contains(t, rep.Ratios, "governed/ungoverned cpu")
}

// TestParkedSmoke keeps `warden bench parked` from rotting: a few runs park
// on an approval, memory is read, all are approved and complete, and
// progress lines come while it parks and approves.
func TestParkedSmoke(t *testing.T) {
	srv := testenv.DevServer(t)
	var progress testenv.SyncBuffer
	rep, err := bench.Parked(context.Background(), bench.ParkedOptions{Client: srv.Client(), Runs: 4, CacheSize: 2, DataDir: t.TempDir(),
		Progress: &progress, ProgressEvery: 50 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, 4, rep.Completed)
	require.Equal(t, 4, rep.Parked)
	require.Zero(t, rep.Failed)
	require.Empty(t, rep.Failures)
	require.Positive(t, rep.RSS)
	require.GreaterOrEqual(t, rep.PeakRSS, rep.RSS)
	require.GreaterOrEqual(t, rep.EndPeakRSS, rep.PeakRSS)
	require.Positive(t, rep.HeapInUse)
	require.Positive(t, rep.ApprovalsPerSec)
	out := progress.String()
	require.Regexp(t, `parking: 4/4 started, 4 parked, 0 failed, [0-9.]+ parked/s, worker RSS [0-9]+ MB`, out)
	require.Regexp(t, `approving: 4/4 decided, 4 completed, 0 failed, [0-9]+ read from the memo, [0-9]+ via the Signal, [0-9.]+ completed/s, worker RSS [0-9]+ MB`, out)
}

// TestParkedReportsFailures: when approvals fail (here an approver the
// policy refuses), every run is still tried, the report is complete and
// lists which run failed with what, and the error comes with it.
func TestParkedReportsFailures(t *testing.T) {
	srv := testenv.DevServer(t)
	rep, err := bench.Parked(context.Background(), bench.ParkedOptions{Client: srv.Client(), Runs: 3, DataDir: t.TempDir(), Approver: "mallory"})
	require.ErrorContains(t, err, "3 of 3 runs failed (0 completed)")
	require.Equal(t, 3, rep.Runs)
	require.Equal(t, 3, rep.Parked, "the park phase is reported")
	require.Positive(t, rep.RSS)
	require.Zero(t, rep.Completed)
	require.Equal(t, 3, rep.Failed)
	require.Len(t, rep.Failures, 3)
	seen := map[string]bool{}
	for _, f := range rep.Failures {
		require.Equal(t, "approve", f.Phase)
		require.Contains(t, f.Error, "mallory is not among the approvers")
		seen[f.WorkflowID] = true
	}
	require.Len(t, seen, 3, "each failed run is named")
}

// TestBenchPostgresCPU: with the audit in the local PostgreSQL, the
// governed mode's server backends are found and their CPU counted.
func TestBenchPostgresCPU(t *testing.T) {
	srv := testenv.DevServer(t)
	rep, err := bench.Run(context.Background(), bench.Options{Client: srv.Client(), Runs: 2, Steps: 3, Modes: []string{bench.ModeGoverned},
		DatabaseURL: testenv.PostgresSchema(t), DataDir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	require.Positive(t, rep.Results[0].CPU.Postgres)
}
