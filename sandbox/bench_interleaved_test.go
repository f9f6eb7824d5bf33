//go:build linux

package sandbox_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden/sandbox"
)

// BenchmarkSpawnInterleaved runs /bin/true once per arm in every
// iteration — Warden isolated with the test binary as init, Warden with
// the dedicated warden-sandbox-init, bubblewrap — rotating which goes
// first, so load changes hit every arm alike. It reports each arm's
// median and p90 (ms) and the ratios to bwrap:
//
//	go test -run '^$' -bench SpawnInterleaved -benchtime=200x ./sandbox
func BenchmarkSpawnInterleaved(b *testing.B) {
	ctx := context.Background()
	warden := func(opts sandbox.Options) func() error {
		r, err := sandbox.New(opts)
		if err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		return func() error {
			res, err := r.Run(ctx, sandbox.Spec{Argv: []string{"/bin/true"}, Dir: dir})
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("exit %d: %s", res.ExitCode, res.Stderr)
			}
			return err
		}
	}
	arms := []struct {
		name  string
		spawn func() error
		ms    []float64
	}{
		{name: "warden", spawn: warden(sandbox.Options{})},
		{name: "dedicated", spawn: warden(sandbox.Options{SelfPath: dedicatedInit(b)})},
		{name: "bwrap", spawn: bwrapSpawner(b, "/bin/true")},
	}
	i := 0
	for b.Loop() {
		for k := range arms {
			a := &arms[(i+k)%len(arms)]
			start := time.Now()
			if err := a.spawn(); err != nil {
				b.Fatalf("%s: %v", a.name, err)
			}
			a.ms = append(a.ms, float64(time.Since(start).Microseconds())/1000)
		}
		i++
	}
	quantile := func(v []float64, q float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[int(q*float64(len(s)-1))]
	}
	bwrapMedian := quantile(arms[2].ms, 0.5)
	for _, a := range arms {
		b.ReportMetric(quantile(a.ms, 0.5), a.name+"-median-ms")
		b.ReportMetric(quantile(a.ms, 0.9), a.name+"-p90-ms")
		if a.name != "bwrap" {
			b.ReportMetric(quantile(a.ms, 0.5)/bwrapMedian, a.name+"/bwrap-median")
			b.ReportMetric(quantile(a.ms, 0.9)/quantile(arms[2].ms, 0.9), a.name+"/bwrap-p90")
		}
	}
}
