package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/testenv"
)

// benchEvent is a realistic tool_executed row of run wf, event n.
func benchEvent(tenant, wf string, n int, at time.Time) warden.AuditEvent {
	return warden.AuditEvent{
		ID: fmt.Sprintf("%s-%d", wf, n), Type: warden.EventToolExecuted, Tenant: tenant, WorkflowID: wf, RunID: "run-1",
		Step: n / 3, CallID: "call-" + strconv.Itoa(n/3), Actor: "sandbox", Tool: "shell",
		Args:   json.RawMessage(`{"argv":["ls","-la","/workspace"],"timeout_seconds":30}`),
		Result: json.RawMessage(`{"exit_code":0,"stdout":"total 8\ndrwxr-xr-x 2 agent agent 4096 .\n","truncated":false}`),
		Risk:   warden.RiskLow, Message: "ran ls", OccurredAt: at,
	}
}

// BenchmarkAppendConcurrentRuns measures hash-chained appends with 50 runs
// appending at once (one event per Append, and three: a step's requested,
// decided and approval-requested rows), on
// PostgreSQL, against a baseline in the same run: the same rows inserted
// unchained (one INSERT ... ON CONFLICT DO NOTHING, no locks, no head
// read). Reported as events/s; the pool allows 50 connections.
//
//	go test ./audit -run '^$' -bench AppendConcurrentRuns -benchtime 20000x
func BenchmarkAppendConcurrentRuns(b *testing.B) {
	const runs = 50
	for _, bc := range []struct {
		mode  string
		batch int
	}{{"unchained", 1}, {"chained", 1}, {"unchained", 3}, {"chained", 3}} {
		mode := bc.mode
		b.Run(fmt.Sprintf("%s/batch=%d", mode, bc.batch), func(b *testing.B) {
			dsn := testenv.PostgresSchema(b) + "&pool_max_conns=" + strconv.Itoa(runs)
			s, err := OpenPostgres(b.Context(), dsn)
			require.NoError(b, err)
			defer s.Close()
			ctx := b.Context()
			var next, written atomic.Int64
			total := int64(b.N)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for r := range runs {
				wg.Go(func() {
					wf := fmt.Sprintf("wf-%d", r)
					for n := 0; ; n += bc.batch {
						if next.Add(int64(bc.batch)) > total {
							return
						}
						events := make([]warden.AuditEvent, bc.batch)
						for i := range events {
							events[i] = benchEvent("acme", wf, n+i, time.Now())
						}
						var err error
						if mode == "chained" {
							err = s.Append(ctx, events...)
						} else {
							err = unchainedAppend(ctx, s.pool, events...)
						}
						if err != nil {
							b.Error(err)
							return
						}
						written.Add(int64(bc.batch))
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(written.Load())/time.Since(start).Seconds(), "events/s")
		})
	}
}

// unchainedAppend is the baseline: what Append did before the hash chain.
func unchainedAppend(ctx context.Context, pool *pgxpool.Pool, events ...warden.AuditEvent) error {
	prepared, err := prepare(events)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return pgInsertChunk(ctx, tx, prepared) })
}

// bigStore loads WARDEN_BENCH_ROWS (default 1,000,000) chained events into
// a throwaway schema: 20-event runs of 50 tenants, one event a second,
// ending now, loaded with COPY.
func bigStore(b *testing.B) (*Postgres, int) {
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("WARDEN_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	ctx := context.Background()
	s, err := OpenPostgres(ctx, testenv.PostgresSchema(b))
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	t0 := time.Now().Add(-time.Duration(rows) * time.Second)
	const perRun, tenants = 20, 50
	src := make([][]any, 0, 10000)
	heads := map[chainKey]string{}
	cols := strings.Split(chainColumns, ", ")
	flush := func() {
		_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"audit_events"}, cols, pgx.CopyFromRows(src))
		require.NoError(b, err)
		src = src[:0]
	}
	for i := range rows {
		run := i / perRun
		tenant := "tenant-" + strconv.Itoa(run%tenants)
		e := benchEvent(tenant, "wf-"+strconv.Itoa(run), i%perRun, t0.Add(time.Duration(i)*time.Second))
		ev, err := prepare([]warden.AuditEvent{e})
		require.NoError(b, err)
		linked, err := link(ev, heads, nil, []int64{int64(i + 1)}, e.OccurredAt)
		require.NoError(b, err)
		v, err := chainValues(linked[0], func(t time.Time) any { return t })
		require.NoError(b, err)
		src = append(src, v)
		if len(src) == cap(src) {
			flush()
		}
		if i%perRun == perRun-1 {
			delete(heads, chainKey{tenant, e.WorkflowID})
		}
	}
	flush()
	_, err = s.pool.Exec(ctx, "SELECT setval('audit_events_seq_seq', $1)", rows)
	require.NoError(b, err)
	_, err = s.pool.Exec(ctx, "VACUUM ANALYZE audit_events")
	require.NoError(b, err)
	return s, rows
}

// BenchmarkQueryAtScale measures the two queries auditors run most, on a
// table of 1M chained rows (WARDEN_BENCH_ROWS), reporting p50 and p99:
// one run's whole trail, and a tenant's events in a one-hour window. The
// schema is left behind for inspection (warden_bench_*; drop it after).
//
//	go test ./audit -run '^$' -bench QueryAtScale -benchtime 2000x
func BenchmarkQueryAtScale(b *testing.B) {
	s, rows := bigStore(b)
	runs := rows / 20
	end := time.Now()
	for _, q := range []struct {
		name   string
		filter func(i int) warden.AuditFilter
		want   int
	}{
		{"run-trail", func(i int) warden.AuditFilter {
			return warden.AuditFilter{WorkflowID: "wf-" + strconv.Itoa((i*7919)%runs)}
		}, 20},
		{"tenant-hour", func(i int) warden.AuditFilter {
			since := end.Add(-time.Duration(rows)*time.Second + time.Duration((i*104729)%(rows-7200))*time.Second)
			return warden.AuditFilter{Tenant: "tenant-" + strconv.Itoa(i%50), Since: since, Until: since.Add(time.Hour)}
		}, 72},
	} {
		b.Run(q.name, func(b *testing.B) {
			ctx := b.Context()
			var lat []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				got, err := s.Query(ctx, q.filter(i))
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if len(got) < q.want/2 {
					b.Fatalf("%s: %d rows, want about %d", q.name, len(got), q.want)
				}
				i++
			}
			slices.SortFunc(lat, func(a, b time.Duration) int { return cmp.Compare(a, b) })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
