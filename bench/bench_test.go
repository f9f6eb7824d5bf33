package bench_test

import (
	"context"
	"os"
	"testing"

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
// on an approval, memory is read, all are approved and complete.
func TestParkedSmoke(t *testing.T) {
	srv := testenv.DevServer(t)
	rep, err := bench.Parked(context.Background(), bench.ParkedOptions{Client: srv.Client(), Runs: 4, CacheSize: 2, DataDir: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, 4, rep.Completed)
	require.Positive(t, rep.RSS)
	require.GreaterOrEqual(t, rep.PeakRSS, rep.RSS)
	require.GreaterOrEqual(t, rep.EndPeakRSS, rep.PeakRSS)
	require.Positive(t, rep.HeapInUse)
	require.Positive(t, rep.ApprovalsPerSec)
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
