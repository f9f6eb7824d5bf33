package main

import (
	"context"
	"os"
	"time"

	"github.com/wardenhq/warden/telemetry"
	"github.com/wardenhq/warden/worker"
)

// setupTracing gives cfg an OTLP tracer provider when the standard
// OpenTelemetry variables name a collector (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); otherwise tracing stays off. The
// returned func flushes buffered spans.
func setupTracing(ctx context.Context, cfg *worker.Config) (flush func(), _ error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return func() {}, nil
	}
	tp, shutdown, err := telemetry.NewOTLPTracerProvider(ctx)
	if err != nil {
		return nil, err
	}
	cfg.TracerProvider = tp
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(ctx)
	}, nil
}
