// Package telemetry holds Warden's Prometheus metrics and the HTTP server
// that exposes them. The worker records into a *Metrics through decorators
// around the activities' dependencies (worker/metrics.go); this package
// knows nothing of Temporal or the activities.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Warden metric name.
const Namespace = "warden"

// Outcome label values.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
)

// Metrics are Warden's Prometheus collectors, registered on their own
// registry (with the Go runtime and process collectors).
type Metrics struct {
	// Registry holds every collector below; Handler serves it.
	Registry *prometheus.Registry

	// RunsStarted counts runs started, by tenant.
	RunsStarted *prometheus.CounterVec
	// RunsFinished counts runs that ended, by tenant and final status
	// (completed, budget_exhausted, failed, cancelled).
	RunsFinished *prometheus.CounterVec
	// ToolCalls counts tool calls by tool and policy verdict (allow, deny, require_approval).
	ToolCalls *prometheus.CounterVec
	// ApprovalsDecided counts approval outcomes by tool and decision
	// (approve, reject, expired).
	ApprovalsDecided *prometheus.CounterVec
	// ApprovalWait is the time from approval requested to decided, by tool and decision.
	ApprovalWait *prometheus.HistogramVec
	// ModelLatency is the duration of one model call, by model and outcome.
	ModelLatency *prometheus.HistogramVec
	// ModelTokens counts tokens by model, tenant and direction (input, output).
	ModelTokens *prometheus.CounterVec
	// ModelCost counts spend in US dollars by model and tenant (0 for
	// models without prices).
	ModelCost *prometheus.CounterVec
	// PolicyLatency is the duration of one policy decision, by outcome.
	PolicyLatency *prometheus.HistogramVec
	// SandboxDuration is the duration of one sandboxed tool run, by tool and outcome.
	SandboxDuration *prometheus.HistogramVec
	// AuditWriteLatency is the duration of one audit append, by outcome.
	AuditWriteLatency *prometheus.HistogramVec
	// AuditEvents counts audit events written, by type.
	AuditEvents *prometheus.CounterVec
}

// latencyBuckets spans a local policy check (tens of µs) to a slow model call (a minute).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// waitBuckets spans an approval decided in seconds to one that waited a week.
var waitBuckets = []float64{1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600}

// NewMetrics creates and registers Warden's collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		f(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
		f(h)
		return h
	}
	return &Metrics{
		Registry:          reg,
		RunsStarted:       counter("runs_started_total", "Agent runs started, by tenant.", "tenant"),
		RunsFinished:      counter("runs_finished_total", "Agent runs that ended, by tenant and final status.", "tenant", "status"),
		ToolCalls:         counter("tool_calls_total", "Tool calls the model asked for, by tool and policy verdict (allow, deny, require_approval).", "tool", "decision"),
		ApprovalsDecided:  counter("approvals_decided_total", "Approval decisions, by tool and decision (approve, reject, expired).", "tool", "decision"),
		ApprovalWait:      histogram("approval_wait_seconds", "Time from approval requested to decided, by tool and decision.", waitBuckets, "tool", "decision"),
		ModelLatency:      histogram("model_request_duration_seconds", "Duration of one model call, by model and outcome.", latencyBuckets, "model", "outcome"),
		ModelTokens:       counter("model_tokens_total", "Model tokens, by model, tenant and direction (input, output).", "model", "tenant", "direction"),
		ModelCost:         counter("model_cost_usd_total", "Model spend in US dollars, by model and tenant.", "model", "tenant"),
		PolicyLatency:     histogram("policy_decision_duration_seconds", "Duration of one policy decision, by outcome.", latencyBuckets, "outcome"),
		SandboxDuration:   histogram("sandbox_run_duration_seconds", "Duration of one sandboxed tool run, by tool and outcome.", latencyBuckets, "tool", "outcome"),
		AuditWriteLatency: histogram("audit_write_duration_seconds", "Duration of one audit append (one or more events), by outcome.", latencyBuckets, "outcome"),
		AuditEvents:       counter("audit_events_total", "Audit events appended, by event type.", "type"),
	}
}

// Outcome is OutcomeOK for a nil error and OutcomeError otherwise.
func Outcome(err error) string {
	if err != nil {
		return OutcomeError
	}
	return OutcomeOK
}

// Since is the seconds elapsed since start, for Observe.
func Since(start time.Time) float64 { return time.Since(start).Seconds() }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Server serves /metrics and /healthz.
type Server struct {
	// Addr is the address the server listens on (with the port chosen
	// when the configured one was 0).
	Addr string
	srv  *http.Server
	done chan error
}

// Serve listens on addr and serves m's /metrics and a /healthz that
// answers 200 while the server runs.
func Serve(addr string, m *Metrics) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s := &Server{
		Addr: ln.Addr().String(),
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server, waiting up to ctx for scrapes in progress.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
