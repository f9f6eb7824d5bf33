package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/worker"
)

func TestTracingIsOffUnlessAnOTLPEndpointIsSet(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "")
	var cfg worker.Config
	flush, err := setupTracing(context.Background(), &cfg)
	require.NoError(t, err)
	flush()
	require.Nil(t, cfg.TracerProvider)
	require.Empty(t, cfg.MetricReaders)

	// An unreachable collector: the exporters are built lazily, spans and
	// metrics are dropped after retries, and the worker does not fail to
	// start. The common endpoint turns on both traces and GenAI metrics.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	flush, err = setupTracing(context.Background(), &cfg)
	require.NoError(t, err)
	require.NotNil(t, cfg.TracerProvider)
	require.Len(t, cfg.MetricReaders, 1, "the GenAI metrics go to the OTLP endpoint too")
	flush()
}

func TestOTLPMetricsAloneNeedNoTraceEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://127.0.0.1:1/v1/metrics")
	var cfg worker.Config
	flush, err := setupTracing(context.Background(), &cfg)
	require.NoError(t, err)
	flush()
	require.Nil(t, cfg.TracerProvider)
	require.Len(t, cfg.MetricReaders, 1)
}
