package worker

import (
	"fmt"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	topentelemetry "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// temporalTracing returns the Temporal SDK's OpenTelemetry interceptor,
// which traces workflow and activity executions (and carries the trace
// context from the client that started a run through its headers), or nil
// when tp is OpenTelemetry's no-op provider.
func temporalTracing(tp trace.TracerProvider) (interceptor.WorkerInterceptor, error) {
	if _, off := tp.(noop.TracerProvider); off {
		return nil, nil
	}
	ti, err := topentelemetry.NewTracingInterceptor(topentelemetry.TracerOptions{Tracer: tp.Tracer("go.temporal.io/sdk")})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	return ti, nil
}
