package worker

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/telemetry"
)

// Instrument wraps the activities' dependencies (Model, Policy, Tools,
// Audit) with decorators that record Prometheus metrics into m and spans
// with tracer. Either may be nil. Run calls it; tests that build their own
// activities may too.
func Instrument(a *activities.Activities, m *telemetry.Metrics, tracer trace.Tracer) {
	if m == nil && tracer == nil {
		return
	}
	in := &instruments{m: m, tracer: tracer}
	if a.Model != nil {
		a.Model = instrumentedModel{in: in, next: a.Model}
	}
	if a.Policy != nil {
		a.Policy = instrumentedPolicy{in: in, next: a.Policy}
	}
	if a.Tools != nil {
		a.Tools = instrumentedTools{in: in, next: a.Tools}
	}
	if a.Audit != nil {
		a.Audit = &instrumentedAudit{in: in, next: a.Audit, seen: newRecent(8192), requested: map[string]time.Time{}}
	}
}

type instruments struct {
	m      *telemetry.Metrics
	tracer trace.Tracer
}

// span starts a span when tracing is on; end records err and ends it.
func (in *instruments) span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	if in.tracer == nil {
		return ctx, func(error) {}
	}
	ctx, sp := in.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
		}
		sp.End()
	}
}

type instrumentedModel struct {
	in   *instruments
	next activities.Model
}

func (d instrumentedModel) Complete(ctx context.Context, req warden.ModelRequest) (warden.ModelResponse, error) {
	ctx, end := d.in.span(ctx, "warden.model.complete", attribute.String("warden.model", req.Model))
	start := time.Now()
	resp, err := d.next.Complete(ctx, req)
	if d.in.m != nil {
		model := req.Model
		if model == "" {
			model = resp.Model
		}
		d.in.m.ModelLatency.WithLabelValues(model, telemetry.Outcome(err)).Observe(telemetry.Since(start))
	}
	end(err)
	return resp, err
}

type instrumentedPolicy struct {
	in   *instruments
	next activities.Policy
}

func (d instrumentedPolicy) Decide(ctx context.Context, pi warden.PolicyInput) (warden.Decision, error) {
	ctx, end := d.in.span(ctx, "warden.policy.decide")
	start := time.Now()
	dec, err := d.next.Decide(ctx, pi)
	if d.in.m != nil {
		d.in.m.PolicyLatency.WithLabelValues(telemetry.Outcome(err)).Observe(telemetry.Since(start))
	}
	end(err)
	return dec, err
}

type instrumentedTools struct {
	in   *instruments
	next activities.Tools
}

func (d instrumentedTools) Spec(name string) (warden.ToolSpec, bool) { return d.next.Spec(name) }
func (d instrumentedTools) Specs(allowed []string) []warden.ToolSpec { return d.next.Specs(allowed) }
func (d instrumentedTools) Validate(name string, args json.RawMessage) error {
	return d.next.Validate(name, args)
}

func (d instrumentedTools) Run(ctx context.Context, run activities.ToolRun) (warden.ToolOutput, error) {
	ctx, end := d.in.span(ctx, "warden.tool.run", attribute.String("warden.tool", run.Tool))
	start := time.Now()
	out, err := d.next.Run(ctx, run)
	if d.in.m != nil {
		d.in.m.SandboxDuration.WithLabelValues(run.Tool, telemetry.Outcome(err)).Observe(telemetry.Since(start))
	}
	end(err)
	return out, err
}

// instrumentedAudit times appends and derives the run, tool-call, approval
// and token metrics from the events written: every one of those facts is
// audited exactly where it happens, so the audit stream is the one place
// that sees them all. Retried appends of the same event are counted once
// as long as its ID is among the recent ones remembered.
type instrumentedAudit struct {
	in   *instruments
	next activities.Audit

	mu   sync.Mutex
	seen *recent
	// requested remembers when each approval was requested (by request ID),
	// for the approval wait time. Requests made by another worker process
	// are not known here and their wait is not observed.
	requested map[string]time.Time
}

func (d *instrumentedAudit) Has(ctx context.Context, eventID string) (bool, error) {
	return d.next.Has(ctx, eventID)
}

func (d *instrumentedAudit) Append(ctx context.Context, events ...warden.AuditEvent) error {
	ctx, end := d.in.span(ctx, "warden.audit.append", attribute.Int("warden.audit.events", len(events)))
	start := time.Now()
	err := d.next.Append(ctx, events...)
	if m := d.in.m; m != nil {
		m.AuditWriteLatency.WithLabelValues(telemetry.Outcome(err)).Observe(telemetry.Since(start))
		if err == nil {
			d.count(events)
		}
	}
	end(err)
	return err
}

func (d *instrumentedAudit) count(events []warden.AuditEvent) {
	m := d.in.m
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ev := range events {
		if !d.seen.add(ev.ID) {
			continue
		}
		m.AuditEvents.WithLabelValues(string(ev.Type)).Inc()
		switch ev.Type {
		case warden.EventRunStarted:
			m.RunsStarted.WithLabelValues(ev.Tenant).Inc()
		case warden.EventRunFinished:
			m.RunsFinished.WithLabelValues(ev.Tenant, ev.Decision).Inc()
		case warden.EventPolicyDecided:
			m.ToolCalls.WithLabelValues(ev.Tool, ev.Decision).Inc()
		case warden.EventModelCalled:
			m.ModelTokens.WithLabelValues(ev.Model, ev.Tenant, "input").Add(float64(ev.InputTokens))
			m.ModelTokens.WithLabelValues(ev.Model, ev.Tenant, "output").Add(float64(ev.OutputTokens))
			// The series exists (at 0 for unpriced models) so dashboards and
			// alerts work before prices are configured.
			m.ModelCost.WithLabelValues(ev.Model, ev.Tenant).Add(modelCostUSD(ev.Result))
		case warden.EventApprovalRequested:
			if len(d.requested) >= 8192 {
				clear(d.requested)
			}
			d.requested[ev.RequestID] = ev.OccurredAt
		case warden.EventApprovalDecided:
			decision := ev.Decision
			if ev.Actor == "system" {
				decision = "expired"
			}
			m.ApprovalsDecided.WithLabelValues(ev.Tool, decision).Inc()
			if at, ok := d.requested[ev.RequestID]; ok && !ev.OccurredAt.IsZero() && !at.IsZero() {
				m.ApprovalWait.WithLabelValues(ev.Tool, decision).Observe(max(ev.OccurredAt.Sub(at), 0).Seconds())
			}
		}
	}
}

// modelCostUSD reads the spend from a model_called event's result, which
// carries the call's usage (warden.Usage, cost in millionths of a dollar).
func modelCostUSD(result json.RawMessage) float64 {
	var r struct {
		Usage struct {
			CostMicroUSD int64 `json:"cost_micro_usd"`
		} `json:"usage"`
	}
	if json.Unmarshal(result, &r) != nil || r.Usage.CostMicroUSD < 0 {
		return 0
	}
	return float64(r.Usage.CostMicroUSD) / 1e6
}

// recent is a bounded set of the last n strings added.
type recent struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) *recent {
	return &recent{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add reports whether s was new, remembering it.
func (r *recent) add(s string) bool {
	if s == "" {
		return true
	}
	if _, ok := r.set[s]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = s
	r.next = (r.next + 1) % len(r.ring)
	r.set[s] = struct{}{}
	return true
}
