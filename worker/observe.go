package worker

import (
	"context"
	"time"

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
}

// observe instruments deps' activities and starts the /metrics server when
// cfg.MetricsAddress is set. Spans go to cfg.TracerProvider; nil means no
// tracing at all (no spans, no Temporal tracing interceptor).
func observe(cfg Config, deps *Deps) (*observability, error) {
	o := &observability{}
	var tp trace.TracerProvider = noop.NewTracerProvider()
	var tracer trace.Tracer
	if cfg.TracerProvider != nil {
		tp = cfg.TracerProvider
		tracer = tp.Tracer(tracerName)
	}
	if cfg.MetricsAddress != "" {
		o.metrics = telemetry.NewMetrics()
	}
	Instrument(deps.Activities, o.metrics, tracer)
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

// close stops the metrics server after a last chance to be scraped.
func (o *observability) close() {
	if o.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = o.server.Close(ctx)
}
