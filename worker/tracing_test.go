package worker_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wardenhq/warden"
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
	c := warden.NewClient(srv.Client(), cfg.TaskQueue)
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
		"warden.model.complete", "warden.tool.run", "warden.policy.decide", "warden.audit.append"} {
		require.NotEmpty(t, byName[want], "no %q span; got %v", want, names)
	}
	// Warden's spans are children of the Temporal activity span that ran them.
	tool := byName["warden.tool.run"][0]
	var parent *tracetest.SpanStub
	for _, s := range byName["RunActivity:Execute"] {
		if s.SpanContext.SpanID() == tool.Parent.SpanID() {
			parent = &s
		}
	}
	require.NotNil(t, parent, "warden.tool.run must be a child of RunActivity:Execute")
	require.Equal(t, parent.SpanContext.TraceID(), tool.SpanContext.TraceID())
	model := byName["warden.model.complete"][0]
	require.Equal(t, tool.SpanContext.TraceID(), model.SpanContext.TraceID(), "one trace per run")
}
