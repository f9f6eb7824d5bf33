package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/temporal"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/internal/bounded"
	"github.com/wardenhq/warden/llm"
	"github.com/wardenhq/warden/telemetry"
)

// Instrument wraps the activities' dependencies (Model, Policy, Tools,
// Audit) with decorators that record Prometheus metrics into m, spans with
// tracer and the OpenTelemetry GenAI metrics into genai. Any may be nil.
// Run calls it; tests that build their own activities may too.
func Instrument(a *activities.Activities, m *telemetry.Metrics, tracer trace.Tracer, genai *telemetry.GenAI) {
	if m == nil && tracer == nil && genai == nil {
		return
	}
	in := &instruments{m: m, tracer: tracer, genai: genai, prices: a.Prices, approvals: newApprovalWaits(8192)}
	if a.Model != nil {
		p, _ := a.Model.(providers)
		a.Model = instrumentedModel{in: in, next: a.Model, providers: p}
	}
	if a.Policy != nil {
		a.Policy = instrumentedPolicy{in: in, next: a.Policy}
	}
	if a.Tools != nil {
		a.Tools = instrumentedTools{in: in, next: a.Tools}
	}
	if a.Audit != nil {
		a.Audit = &instrumentedAudit{in: in, next: a.Audit, seen: newRecent(8192)}
	}
}

// providers names who serves a model (gen_ai.provider.name); *llm.Router
// implements it.
type providers interface {
	Provider(model string) string
}

type instruments struct {
	m      *telemetry.Metrics
	tracer trace.Tracer
	genai  *telemetry.GenAI
	// prices is the model catalog (nil: no costs on the spans).
	prices activities.Prices
	// approvals remembers the approval waits seen in the audit stream, for
	// the spans of the tool runs they let through.
	approvals *approvalWaits
}

// span starts a span when tracing is on (a no-op span otherwise); end
// records err (with its error.type) and ends it.
func (in *instruments) span(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span, func(error)) {
	if in.tracer == nil {
		return ctx, noop.Span{}, func(error) {}
	}
	ctx, sp := in.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	return ctx, sp, func(err error) {
		if err != nil {
			sp.SetAttributes(telemetry.AttrErrorType.String(errorType(err)))
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
		}
		sp.End()
	}
}

// errorType is the error.type of a failed call: the Temporal application
// error type Warden gave it (for example "ModelError"), "timeout" or
// "cancelled", else "_OTHER" as the conventions ask.
func errorType(err error) string {
	var app *temporal.ApplicationError
	switch {
	case errors.As(err, &app) && app.Type() != "":
		return app.Type()
	case errors.Is(err, warden.ErrModelPermanent):
		return "permanent"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "_OTHER"
}

type instrumentedModel struct {
	in        *instruments
	next      activities.Model
	providers providers
}

// Complete is one model call: a "chat {model}" client span and the
// gen_ai.client.* metrics, with the usage and, for priced models, the cost.
func (d instrumentedModel) Complete(ctx context.Context, req warden.ModelRequest) (warden.ModelResponse, error) {
	provider := llm.DefaultProvider
	if d.providers != nil {
		provider = d.providers.Provider(req.Model)
	}
	attrs := []attribute.KeyValue{
		telemetry.AttrOperationName.String(telemetry.OperationChat),
		telemetry.AttrProviderName.String(provider),
		telemetry.AttrRequestModel.String(req.Model),
		attribute.String("warden.model", req.Model),
	}
	if req.MaxOutputTokens > 0 {
		attrs = append(attrs, telemetry.AttrRequestMaxTokens.Int(req.MaxOutputTokens))
	}
	ctx, sp, end := d.in.span(ctx, strings.TrimSpace(telemetry.OperationChat+" "+req.Model), trace.SpanKindClient, attrs...)
	start := time.Now()
	resp, err := d.next.Complete(ctx, req)
	elapsed := time.Since(start)
	call := telemetry.ModelCall{Provider: provider, RequestModel: req.Model, Seconds: elapsed.Seconds()}
	if err != nil {
		call.ErrorType = errorType(err)
	} else {
		call.ResponseModel, call.InputTokens, call.OutputTokens = resp.Model, resp.Usage.InputTokens, resp.Usage.OutputTokens
		sp.SetAttributes(
			telemetry.AttrResponseModel.String(resp.Model),
			telemetry.AttrUsageInputTokens.Int(resp.Usage.InputTokens),
			telemetry.AttrUsageOutputTokens.Int(resp.Usage.OutputTokens),
		)
		if resp.ID != "" {
			sp.SetAttributes(telemetry.AttrResponseID.String(resp.ID))
		}
		if resp.FinishReason != "" {
			sp.SetAttributes(telemetry.AttrResponseFinishReasons.StringSlice([]string{resp.FinishReason}))
		}
		if d.in.prices != nil {
			if pin, pout, ok := d.in.prices.Price(req.Model); ok {
				cost := warden.Usage{CostMicroUSD: activities.CostMicroUSD(resp.Usage, pin, pout)}
				sp.SetAttributes(telemetry.AttrCostUSD.Float64(cost.CostUSD()))
			}
		}
	}
	d.in.genai.RecordModelCall(ctx, call)
	if d.in.m != nil {
		model := req.Model
		if model == "" {
			model = resp.Model
		}
		d.in.m.ModelLatency.WithLabelValues(model, telemetry.Outcome(err)).Observe(elapsed.Seconds())
	}
	end(err)
	return resp, err
}

type instrumentedPolicy struct {
	in   *instruments
	next activities.Policy
}

func (d instrumentedPolicy) Decide(ctx context.Context, pi warden.PolicyInput) (warden.Decision, error) {
	ctx, sp, end := d.in.span(ctx, "warden.policy.decide", trace.SpanKindInternal)
	start := time.Now()
	dec, err := d.next.Decide(ctx, pi)
	if d.in.m != nil {
		d.in.m.PolicyLatency.WithLabelValues(telemetry.Outcome(err)).Observe(telemetry.Since(start))
	}
	sp.SetAttributes(telemetry.AttrToolName.String(pi.Tool.Name), telemetry.AttrDecision.String(dec.Verdict()))
	if dec.Risk != "" {
		sp.SetAttributes(telemetry.AttrRisk.String(string(dec.Risk)))
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

// Run is one tool execution: an "execute_tool {tool}" span with the
// policy's verdict and risk and, for an approved call, the approval wait.
func (d instrumentedTools) Run(ctx context.Context, run activities.ToolRun) (warden.ToolOutput, error) {
	attrs := []attribute.KeyValue{
		telemetry.AttrOperationName.String(telemetry.OperationExecuteTool),
		telemetry.AttrToolName.String(run.Tool),
		telemetry.AttrToolType.String(telemetry.ToolTypeFunction),
		attribute.String("warden.tool", run.Tool),
	}
	if run.CallID != "" {
		attrs = append(attrs, telemetry.AttrToolCallID.String(run.CallID))
	}
	if spec, ok := d.next.Spec(run.Tool); ok && spec.Description != "" {
		attrs = append(attrs, telemetry.AttrToolDescription.String(spec.Description))
	}
	if run.Decision != "" {
		attrs = append(attrs, telemetry.AttrDecision.String(run.Decision))
	}
	if run.Risk != "" {
		attrs = append(attrs, telemetry.AttrRisk.String(string(run.Risk)))
	}
	if run.ApprovalRequestID != "" {
		attrs = append(attrs, telemetry.AttrApprovalRequestID.String(run.ApprovalRequestID))
		if wait, ok := d.in.approvals.wait(run.ApprovalRequestID); ok {
			attrs = append(attrs, telemetry.AttrApprovalWait.Float64(wait.Seconds()))
		}
	}
	ctx, _, end := d.in.span(ctx, telemetry.OperationExecuteTool+" "+run.Tool, trace.SpanKindInternal, attrs...)
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
}

func (d *instrumentedAudit) Has(ctx context.Context, eventID string) (bool, error) {
	return d.next.Has(ctx, eventID)
}

func (d *instrumentedAudit) Append(ctx context.Context, events ...warden.AuditEvent) error {
	ctx, sp, end := d.in.span(ctx, "warden.audit.append", trace.SpanKindInternal, attribute.Int("warden.audit.events", len(events)))
	start := time.Now()
	err := d.next.Append(ctx, events...)
	if m := d.in.m; m != nil {
		m.AuditWriteLatency.WithLabelValues(telemetry.Outcome(err)).Observe(telemetry.Since(start))
	}
	if err == nil {
		d.count(sp, events)
	}
	end(err)
	return err
}

func (d *instrumentedAudit) count(sp trace.Span, events []warden.AuditEvent) {
	m := d.in.m
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ev := range events {
		if !d.seen.add(ev.ID) {
			continue
		}
		switch ev.Type {
		case warden.EventApprovalRequested:
			d.in.approvals.requested(ev.RequestID, ev.OccurredAt)
		case warden.EventApprovalDecided:
			if wait, ok := d.in.approvals.decided(ev.RequestID, ev.OccurredAt); ok {
				sp.SetAttributes(telemetry.AttrApprovalRequestID.String(ev.RequestID), telemetry.AttrApprovalWait.Float64(wait.Seconds()))
				if m != nil {
					m.ApprovalWait.WithLabelValues(ev.Tool, approvalOutcome(ev)).Observe(wait.Seconds())
				}
			}
		}
		if m == nil {
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
		case warden.EventApprovalDecided:
			m.ApprovalsDecided.WithLabelValues(ev.Tool, approvalOutcome(ev)).Inc()
		}
	}
}

// approvalOutcome is an approval_decided event's decision label: approve,
// reject, or expired (rejected by the system when the request expired).
func approvalOutcome(ev warden.AuditEvent) string {
	if ev.Actor == "system" {
		return "expired"
	}
	return ev.Decision
}

// approvalWaits remembers when approvals were requested (by request ID) and
// how long each waited for its last decision. Requests made by another
// worker process are not known here and their wait is not observed. Each
// map holds at most limit requests and forgets the least recently used.
type approvalWaits struct {
	at    *bounded.Map[string, time.Time]
	waits *bounded.Map[string, time.Duration]
}

func newApprovalWaits(limit int) *approvalWaits {
	return &approvalWaits{at: bounded.New[string, time.Time](limit), waits: bounded.New[string, time.Duration](limit)}
}

func (a *approvalWaits) requested(id string, at time.Time) {
	if id == "" || at.IsZero() {
		return
	}
	a.at.Put(id, at)
}

// decided records a decision on request id at time at and returns the wait
// since the request, if the request was seen.
func (a *approvalWaits) decided(id string, at time.Time) (time.Duration, bool) {
	req, ok := a.at.Get(id)
	if !ok || at.IsZero() {
		return 0, false
	}
	wait := max(at.Sub(req), 0)
	a.waits.Put(id, wait)
	return wait, true
}

// wait is the wait of request id up to its last decision.
func (a *approvalWaits) wait(id string) (time.Duration, bool) {
	return a.waits.Get(id)
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
