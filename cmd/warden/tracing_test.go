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
	var cfg worker.Config
	flush, err := setupTracing(context.Background(), &cfg)
	require.NoError(t, err)
	flush()
	require.Nil(t, cfg.TracerProvider)

	// An unreachable collector: the exporter is built lazily, spans are
	// dropped after retries, and the worker does not fail to start.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	flush, err = setupTracing(context.Background(), &cfg)
	require.NoError(t, err)
	require.NotNil(t, cfg.TracerProvider)
	flush()
}
