package worker

import (
	"context"
	"slices"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/interceptor"

	"github.com/wardenhq/warden/telemetry"
)

// tracerName names the tracer of Warden's own spans.
const tracerName = "github.com/wardenhq/warden/worker"

// observability is what Run starts for metrics and tracing.
type observability struct {
	// interceptors go into the Temporal worker's options.
	interceptors []interceptor.WorkerInterceptor
	metrics      *telemetry.Metrics
	server       *telemetry.Server
	// meters reads the GenAI metrics (nil without readers).
	meters *sdkmetric.MeterProvider
}

// observe instruments deps' activities and starts the /metrics server when
// cfg.MetricsAddress is set. Spans go to cfg.TracerProvider; nil means no
// tracing at all (no spans, no Temporal tracing interceptor).
func observe(cfg defaulted, deps *Deps) (*observability, error) {
	o := &observability{}
	var tp trace.TracerProvider = noop.NewTracerProvider()
	var tracer trace.Tracer
	if cfg.TracerProvider != nil {
		tp = cfg.TracerProvider
		tracer = tp.Tracer(tracerName, trace.WithSchemaURL(telemetry.GenAISchemaURL))
	}
	readers := slices.Clone(cfg.MetricReaders)
	if cfg.MetricsAddress != "" {
		o.metrics = telemetry.NewMetrics()
		r, err := telemetry.NewPrometheusReader(o.metrics.Registry)
		if err != nil {
			return nil, err
		}
		readers = append(readers, r)
	}
	var genai *telemetry.GenAI
	if len(readers) > 0 {
		o.meters = telemetry.NewMeterProvider(context.Background(), readers...)
		g, err := telemetry.NewGenAI(o.meters)
		if err != nil {
			return nil, err
		}
		genai = g
	}
	Instrument(deps.Activities, o.metrics, tracer, genai)
	ti, err := temporalTracing(tp)
	if err != nil {
		return nil, err
	}
	if ti != nil {
		o.interceptors = append(o.interceptors, ti)
	}
	if o.metrics != nil {
		srv, err := telemetry.Serve(cfg.MetricsAddress, o.metrics)
		if err != nil {
			return nil, err
		}
		o.server = srv
		cfg.Logger.Info("metrics listening", "address", srv.Addr, "path", "/metrics")
	}
	return o, nil
}

// close stops the metrics server after a last chance to be scraped, then
// flushes the GenAI metrics to their readers.
func (o *observability) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if o.server != nil {
		_ = o.server.Close(ctx)
	}
	if o.meters != nil {
		_ = o.meters.Shutdown(ctx)
	}
}
