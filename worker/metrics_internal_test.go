package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/telemetry"
)

func TestModelCostUSDReadsTheUsageOfAModelCall(t *testing.T) {
	t.Parallel()
	require.InDelta(t, 0.0125, modelCostUSD(json.RawMessage(`{"content":"x","usage":{"input_tokens":3,"cost_micro_usd":12500}}`)), 1e-12)
	require.Zero(t, modelCostUSD(json.RawMessage(`{"usage":{"input_tokens":3}}`)))
	require.Zero(t, modelCostUSD(json.RawMessage(`not json`)))
	require.Zero(t, modelCostUSD(json.RawMessage(`{"usage":{"cost_micro_usd":-5}}`)))
}

func TestRecentForgetsTheOldestBeyondItsSize(t *testing.T) {
	t.Parallel()
	r := newRecent(2)
	require.True(t, r.add("a"))
	require.False(t, r.add("a"))
	require.True(t, r.add("b"))
	require.True(t, r.add("c")) // evicts a
	require.True(t, r.add("a"))
	require.False(t, r.add("c"))
	require.True(t, r.add(""), "events without an ID are always counted")
}

func TestApprovalWaitsForgetTheLeastRecentRequestBeyondTheirLimit(t *testing.T) {
	t.Parallel()
	a := newApprovalWaits(2)
	t0 := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	a.requested("a", t0)
	a.requested("b", t0)
	wait, ok := a.decided("a", t0.Add(time.Minute))
	require.True(t, ok)
	require.Equal(t, time.Minute, wait)
	a.requested("c", t0) // full: b, the least recently used, goes
	_, ok = a.decided("b", t0.Add(time.Minute))
	require.False(t, ok, "b was forgotten")
	_, ok = a.decided("a", t0.Add(2*time.Minute))
	require.True(t, ok, "a, decided again, is still known")
	w, ok := a.wait("a")
	require.True(t, ok)
	require.Equal(t, 2*time.Minute, w, "the wait up to the last decision")
	_, ok = a.decided("c", time.Time{})
	require.False(t, ok, "a decision without a time is not a wait")
}

type nopAudit struct{}

func (nopAudit) Append(context.Context, ...warden.AuditEvent) error { return nil }
func (nopAudit) Has(context.Context, string) (bool, error)          { return false, nil }

// BenchmarkInstrumentedAuditAppend measures what metrics add to one audit
// append (the inner store does nothing): compare with BenchmarkBareAuditAppend.
func BenchmarkInstrumentedAuditAppend(b *testing.B) {
	a := &activities.Activities{Audit: nopAudit{}}
	Instrument(a, telemetry.NewMetrics(), nil, nil)
	benchmarkAppend(b, a.Audit)
}

func BenchmarkBareAuditAppend(b *testing.B) { benchmarkAppend(b, nopAudit{}) }

func benchmarkAppend(b *testing.B, store activities.Audit) {
	ctx := context.Background()
	ev := warden.AuditEvent{Type: warden.EventPolicyDecided, Tenant: "acme", Tool: "shell", Decision: "allow"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev.ID = "evt_" + strconv.Itoa(i)
		if err := store.Append(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}
