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
	rep, err := bench.Run(context.Background(), bench.Options{Client: srv.Client(), Runs: 2, Steps: 3, DataDir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, rep.Results, 3)
	for _, r := range rep.Results {
		require.Equal(t, 3, r.Steps, r.Mode)
		require.Positive(t, r.StepsPerSec, r.Mode)
		require.Positive(t, r.P50, r.Mode)
		require.GreaterOrEqual(t, r.P99, r.P50, r.Mode)
	}
	require.Contains(t, rep.Ratios, "governed/ungoverned p50")
	require.Contains(t, rep.Ratios, "governed/bare p50")
}
