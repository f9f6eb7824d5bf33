package main

import (
	"context"
	"os"
	"time"

	"github.com/wardenhq/warden/telemetry"
	"github.com/wardenhq/warden/worker"
)

// setupTracing gives cfg an OTLP tracer provider when the standard
// OpenTelemetry variables name a collector for traces
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and
// an OTLP reader of the GenAI metrics when they name one for metrics
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT);
// otherwise both stay off. The returned func flushes buffered spans (the
// worker flushes its metric readers itself when it stops).
func setupTracing(ctx context.Context, cfg *worker.Config) (flush func(), _ error) {
	all := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	if all || os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "" {
		r, err := telemetry.NewOTLPMetricReader(ctx)
		if err != nil {
			return nil, err
		}
		cfg.MetricReaders = append(cfg.MetricReaders, r)
	}
	if !all && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
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
