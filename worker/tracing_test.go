package worker_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/worker"
)

func TestTracesCoverWorkflowActivitiesModelToolAndAudit(t *testing.T) {
	srv := testenv.DevServer(t)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		TaskQueue:       "traces-" + testenv.RandomHex(4),
		DataDir:         t.TempDir(),
		TracerProvider:  tp,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	teststack.RunWorker(t, cfg)
	c := client.New(srv.Client(), cfg.TaskQueue)
	h := start(t, c, "acme", "scripted/echo")
	res, err := c.Result(context.Background(), h.WorkflowID)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)

	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byName[s.Name] = append(byName[s.Name], s)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	for _, want := range []string{"RunWorkflow:AgentRun", "RunActivity:Plan", "RunActivity:Execute",
		"chat scripted/echo", "execute_tool shell", "warden.policy.decide", "warden.audit.append"} {
		require.NotEmpty(t, byName[want], "no %q span; got %v", want, names)
	}
	// Warden's spans are children of the Temporal activity span that ran them.
	tool := byName["execute_tool shell"][0]
	var parent *tracetest.SpanStub
	for _, s := range byName["RunActivity:Execute"] {
		if s.SpanContext.SpanID() == tool.Parent.SpanID() {
			parent = &s
		}
	}
	require.NotNil(t, parent, "execute_tool shell must be a child of RunActivity:Execute")
	require.Equal(t, parent.SpanContext.TraceID(), tool.SpanContext.TraceID())
	model := byName["chat scripted/echo"][0]
	require.Equal(t, tool.SpanContext.TraceID(), model.SpanContext.TraceID(), "one trace per run")
}

// attrs maps a span's attributes by key.
func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestGenAISpansAndMetricsOfAnApprovedScriptedRun(t *testing.T) {
	srv := testenv.DevServer(t)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		TaskQueue:       "genai-" + testenv.RandomHex(4),
		DataDir:         t.TempDir(),
		TracerProvider:  tp,
		MetricReaders:   []sdkmetric.Reader{reader},
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	teststack.RunWorker(t, cfg)
	c := client.New(srv.Client(), cfg.TaskQueue)
	ctx := context.Background()

	// The scripted refund: a model call asking for issue_refund, which the
	// policy sends for approval; alice approves after a pause; the refund
	// runs; a second model call answers.
	h := start(t, c, "acme", "scripted/refund")
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		var err error
		pending, err = c.PendingApprovals(ctx, h.WorkflowID)
		return err == nil && len(pending) == 1
	}, time.Minute, 100*time.Millisecond)
	p := pending[0]
	const pause = 600 * time.Millisecond
	time.Sleep(pause)
	_, err := c.Decide(ctx, h.WorkflowID, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)
	res, err := c.Result(ctx, h.WorkflowID)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, 2, res.Steps)
	require.Positive(t, res.Usage.InputTokens)
	require.Positive(t, res.Usage.CostMicroUSD, "the scripted model is priced")

	// Model calls: one "chat {model}" client span per call, with the
	// conventions' attributes; their tokens add up to the usage the run
	// reports (what the scripted model answered), their cost likewise.
	var chats, tools []tracetest.SpanStub
	for _, s := range spans.GetSpans() {
		switch {
		case strings.HasPrefix(s.Name, "chat "):
			chats = append(chats, s)
		case strings.HasPrefix(s.Name, "execute_tool "):
			tools = append(tools, s)
		}
	}
	require.Len(t, chats, res.Steps)
	var in, out int64
	var cost float64
	for _, s := range chats {
		a := attrs(s)
		require.Equal(t, "chat scripted/refund", s.Name)
		require.Equal(t, trace.SpanKindClient, s.SpanKind)
		require.Equal(t, "chat", a["gen_ai.operation.name"].AsString())
		require.Equal(t, "warden.scripted", a["gen_ai.provider.name"].AsString())
		require.Equal(t, "scripted/refund", a["gen_ai.request.model"].AsString())
		require.Equal(t, "scripted/refund", a["gen_ai.response.model"].AsString())
		require.True(t, strings.HasPrefix(a["gen_ai.response.id"].AsString(), "scripted-refund-"), a["gen_ai.response.id"].Emit())
		require.Len(t, a["gen_ai.response.finish_reasons"].AsStringSlice(), 1)
		require.Positive(t, a["gen_ai.usage.input_tokens"].AsInt64())
		require.Positive(t, a["gen_ai.usage.output_tokens"].AsInt64())
		in += a["gen_ai.usage.input_tokens"].AsInt64()
		out += a["gen_ai.usage.output_tokens"].AsInt64()
		cost += a["warden.cost_usd"].AsFloat64()
	}
	require.Equal(t, int64(res.Usage.InputTokens), in)
	require.Equal(t, int64(res.Usage.OutputTokens), out)
	require.InDelta(t, res.Usage.CostUSD(), cost, 1e-9)
	finish := []string{attrs(chats[0])["gen_ai.response.finish_reasons"].AsStringSlice()[0], attrs(chats[1])["gen_ai.response.finish_reasons"].AsStringSlice()[0]}
	require.ElementsMatch(t, []string{"tool_calls", "stop"}, finish)

	// The tool execution: the call the model made, the policy's verdict
	// and risk, the approval it ran under and how long that waited.
	require.Len(t, tools, 1)
	a := attrs(tools[0])
	require.Equal(t, "execute_tool issue_refund", tools[0].Name)
	require.Equal(t, "execute_tool", a["gen_ai.operation.name"].AsString())
	require.Equal(t, "issue_refund", a["gen_ai.tool.name"].AsString())
	require.Equal(t, p.CallID, a["gen_ai.tool.call.id"].AsString())
	require.NotEmpty(t, p.CallID)
	require.Equal(t, "function", a["gen_ai.tool.type"].AsString())
	require.Equal(t, warden.VerdictRequireApproval, a["warden.decision"].AsString())
	require.Equal(t, string(p.Risk), a["warden.risk"].AsString())
	require.NotEmpty(t, p.Risk)
	require.Equal(t, p.RequestID, a["warden.approval.request_id"].AsString())
	wait := a["warden.approval.wait_seconds"].AsFloat64()
	require.GreaterOrEqual(t, wait, pause.Seconds()-0.05, "the wait covers the pause before approving")
	require.Less(t, wait, 60.0)

	// The policy spans carry the verdicts too.
	var verdicts []string
	for _, s := range spans.GetSpans() {
		if s.Name == "warden.policy.decide" {
			verdicts = append(verdicts, attrs(s)["warden.decision"].AsString())
		}
	}
	require.Contains(t, verdicts, warden.VerdictRequireApproval)

	// The GenAI metrics: gen_ai.client.token.usage by token type adds up to
	// the run's usage over its two calls; gen_ai.client.operation.duration
	// has one observation per call.
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	tokens := map[string]int64{}
	counts := map[string]uint64{}
	var durations uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch m.Name {
			case "gen_ai.client.token.usage":
				require.Equal(t, "{token}", m.Unit)
				for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
					typ, _ := dp.Attributes.Value("gen_ai.token.type")
					model, _ := dp.Attributes.Value("gen_ai.request.model")
					provider, _ := dp.Attributes.Value("gen_ai.provider.name")
					op, _ := dp.Attributes.Value("gen_ai.operation.name")
					require.Equal(t, "scripted/refund", model.AsString())
					require.Equal(t, "warden.scripted", provider.AsString())
					require.Equal(t, "chat", op.AsString())
					tokens[typ.AsString()] += dp.Sum
					counts[typ.AsString()] += dp.Count
				}
			case "gen_ai.client.operation.duration":
				require.Equal(t, "s", m.Unit)
				for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					durations += dp.Count
				}
			}
		}
	}
	require.Equal(t, map[string]int64{"input": int64(res.Usage.InputTokens), "output": int64(res.Usage.OutputTokens)}, tokens)
	require.Equal(t, map[string]uint64{"input": 2, "output": 2}, counts)
	require.Equal(t, uint64(2), durations)
}
