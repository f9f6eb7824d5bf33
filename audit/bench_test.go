package audit

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// BenchmarkAppend measures one Append of a single event and of a batch of 10
// (a step's requested/decided/executed rows plus model usage), per backend.
func BenchmarkAppend(b *testing.B) {
	for _, bk := range []struct {
		name string
		backend
	}{{"postgres", postgresBackend}, {"sqlite", sqliteBackend}} {
		for _, size := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/batch=%d", bk.name, size), func(b *testing.B) {
				s, _ := bk.fresh(b)
				ctx := b.Context()
				e := fullEvent("")
				batch := make([]warden.AuditEvent, size)
				n := 0
				for b.Loop() {
					for i := range batch {
						e.ID = fmt.Sprint("evt-", n)
						e.Step = n
						batch[i] = e
						n++
					}
					if err := s.Append(ctx, batch...); err != nil {
						require.NoError(b, err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
			})
		}
	}
}
