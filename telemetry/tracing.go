package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// ServiceName is the OpenTelemetry service.name of a worker unless
// OTEL_SERVICE_NAME says otherwise.
const ServiceName = "warden-worker"

// NewOTLPTracerProvider returns a tracer provider that batches spans to an
// OTLP/HTTP collector. The exporter reads the standard variables itself
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_INSECURE...), the resource
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the sampler follows
// OTEL_TRACES_SAMPLER (parent-based always-on by default). It also installs
// the provider and the W3C trace-context propagator globally. shutdown
// flushes the spans still buffered.
func NewOTLPTracerProvider(ctx context.Context) (_ *sdktrace.TracerProvider, shutdown func(context.Context) error, _ error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res := workerResource(ctx)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp, tp.Shutdown, nil
}
