package worker

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/egress"
)

// Config configures a worker. Zero fields take the defaults documented on
// each field; cmd/warden fills it from flags and WARDEN_* variables.
type Config struct {
	// TemporalAddress is the Temporal frontend host:port. Default 127.0.0.1:7233.
	TemporalAddress string
	// TemporalCompression is the gRPC compression of requests to Temporal:
	// "gzip", "none", or "auto" (the default): none to a loopback address,
	// where gzip only costs CPU, gzip otherwise.
	TemporalCompression string
	// Namespace is the Temporal namespace. Default "default".
	Namespace string
	// TaskQueue is the task queue to poll. Default warden.DefaultTaskQueue.
	TaskQueue string
	// DatabaseURL is the PostgreSQL audit database. Empty means the embedded
	// SQLite audit store at <DataDir>/audit.db.
	DatabaseURL string
	// DataDir holds the SQLite audit file, run workspaces and the demo
	// refund ledger. Default ".warden".
	DataDir string
	// PolicyDir is a directory of Rego policies used instead of the
	// embedded default bundle.
	PolicyDir string
	// ModelBaseURL is an OpenAI-compatible API base URL. Empty means the
	// in-process scripted model.
	ModelBaseURL string
	// ModelAPIKey is the API key for ModelBaseURL.
	ModelAPIKey string
	// ModelName is the default model for runs that name none. Default
	// "scripted/demo" with the scripted model; required otherwise.
	ModelName string
	// ModelsFile names models runs may ask for: endpoint, key, model ID,
	// prices and context window ({"models": [...]}, see llm.ModelConfig).
	// The scripted model is always priced (llm.DefaultModels).
	ModelsFile string
	// ScenarioFile adds scripted-model scenarios from a JSON file.
	ScenarioFile string
	// SandboxMode is the tool isolation mode: "isolated" (the default:
	// namespaces, Landlock, seccomp; Build fails where the host cannot
	// isolate) or "process" (degraded, chosen explicitly; policies see it).
	SandboxMode string
	// SandboxProcessAsRoot accepts SandboxMode "process" when the worker
	// runs as root (tools then run as host root with every capability).
	SandboxProcessAsRoot bool
	// SandboxHostUID and SandboxHostGID are the unprivileged host ids the
	// sandbox's root maps to when the worker runs as root. Default 65534.
	SandboxHostUID, SandboxHostGID int
	// SandboxCgroupParent is a delegated cgroup v2 (memory and pids in its
	// cgroup.controllers, no processes of its own) under which each tool
	// run gets a cgroup bounding its memory and processes. Empty means
	// the worker's own v2 cgroup where it may enable those controllers,
	// else writable v1 memory and pids hierarchies, else rlimits only
	// (see docs/sandbox.md).
	SandboxCgroupParent string
	// SandboxDiskQuota is how each run's workspace is capped: empty means
	// the best the host offers ("tmpfs" where the worker runs isolated as
	// root, else "budget"); "tmpfs" asks for it (Build fails where it does
	// not work); "budget" forces the after-the-fact walk; "none" turns it
	// off. See sandbox.Options.DiskQuota.
	SandboxDiskQuota string
	// SandboxDiskBytes and SandboxDiskInodes cap each run's workspace
	// (bytes allocated; files and directories). Zero means
	// sandbox.DefaultDiskBytes (1 GiB) and sandbox.DefaultDiskInodes
	// (100,000); negative means no cap.
	SandboxDiskBytes, SandboxDiskInodes int64
	// WorkspaceSweepInterval is how often the worker removes the
	// workspaces of run chains Temporal reports closed (completed, failed,
	// terminated, timed out, cancelled). Default DefaultWorkspaceSweepInterval;
	// negative turns the sweeper off.
	WorkspaceSweepInterval time.Duration
	// ClosedRunAuditInterval is how often the worker looks for runs that
	// Temporal terminated or timed out and writes the run_finished row
	// they could not write (worker/closed_runs.go). Default
	// DefaultClosedRunAuditInterval; negative turns it off.
	ClosedRunAuditInterval time.Duration
	// SandboxInit is the dedicated sandbox init binary (built from
	// ./sandbox/cmd/warden-sandbox-init with the worker). Empty means
	// warden-sandbox-init next to the worker's executable when it exists,
	// else the worker re-executes itself (slower: every tool run pays the
	// whole binary's package initialization).
	SandboxInit string
	// ToolBinary runs the built-in Go tools (built from
	// ./tools/cmd/warden-tools with the worker). Empty means warden-tools
	// next to the worker's executable when it exists, else the built-ins
	// re-execute the worker binary.
	ToolBinary string
	// EgressLog receives every connection a tool opened (or was refused)
	// through the egress proxy, for the audit log. Nil logs them with
	// Logger at info level.
	EgressLog func(egress.Connection)
	// LedgerPath is the demo issue_refund tool's ledger. Default <DataDir>/refunds.jsonl.
	LedgerPath string
	// RefundDelay makes issue_refund wait after writing its ledger entry,
	// simulating a slow payment provider (crash tests use it).
	RefundDelay time.Duration
	// EscalationWebhook receives a JSON POST when a pending approval reaches
	// the escalation time the policy sets. Empty means escalations are only
	// audited.
	EscalationWebhook string
	// AuditSealInterval is how often the worker seals the audit log (a
	// per-tenant checkpoint over the run chains that makes deleting a
	// whole run detectable; docs/audit.md). It also seals once when it
	// stops. Default 1m; negative seals only at stop.
	AuditSealInterval time.Duration
	// AuditSealKey is the file of the Ed25519 private key that signs the
	// worker's seals (warden audit keygen). Empty leaves seals unsigned:
	// anyone with the writer credential can then forge a seal (docs/audit.md).
	AuditSealKey string
	// AuditAnchor is the append-only file every seal's head is also written
	// to, outside the database, so verify --anchor catches a deleted last
	// seal, a truncation or a wiped tenant. Empty writes no anchor.
	AuditAnchor string
	// Logger receives the worker's logs. Default slog.Default().
	Logger *slog.Logger

	// Operations (docs/configuration.md).

	// MetricsAddress is the host:port of the Prometheus /metrics endpoint
	// (and /healthz). Empty means no metrics server; cmd/warden passes
	// WARDEN_METRICS_ADDRESS.
	MetricsAddress string
	// StopTimeout is how long a stopping worker lets in-flight activities
	// finish before cancelling them (Temporal's WorkerStopTimeout). Default
	// 30s; the container runtime's grace period must be longer.
	StopTimeout time.Duration
	// WorkflowCacheSize is how many runs the worker keeps in memory between
	// workflow tasks (Temporal's sticky cache). It bounds the worker's
	// memory when many runs wait for approval; a run pushed out is replayed
	// from its history when it next wakes. Process-wide: the first worker
	// started in a process sets it. Default DefaultWorkflowCacheSize.
	WorkflowCacheSize int
	// TracerProvider receives Warden's spans (model calls, tool runs, audit
	// writes) and the Temporal SDK's workflow and activity spans. Nil means
	// no tracing (cmd/warden sets an OTLP exporter when
	// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set).
	TracerProvider trace.TracerProvider
	// MetricReaders receive the OpenTelemetry GenAI metrics of model calls
	// (gen_ai.client.token.usage, gen_ai.client.operation.duration):
	// cmd/warden passes an OTLP exporter when OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set, tests a ManualReader. With
	// MetricsAddress set, /metrics serves them too. The worker shuts the
	// readers down (flushing them) when it stops, so a reader serves one
	// Run.
	MetricReaders []sdkmetric.Reader

	// hasDefaults marks a Config WithDefaults returned.
	hasDefaults bool
}

// DefaultTemporalAddress is where a local dev server listens.
const DefaultTemporalAddress = "127.0.0.1:7233"

// DefaultWorkflowCacheSize is the default WorkflowCacheSize (BENCHMARKS.md,
// parked runs, has the memory it buys).
const DefaultWorkflowCacheSize = 2000

// DefaultWorkspaceSweepInterval is how often the worker removes the
// workspaces of closed runs: often enough that a host's disk (or RAM,
// with the tmpfs quota) is freed within minutes of a run's end, rare
// enough that one DescribeWorkflowExecution per workspace is nothing to
// the Temporal frontend.
const DefaultWorkspaceSweepInterval = 5 * time.Minute

// DefaultClosedRunAuditInterval is how often the worker audits runs that
// Temporal ended by itself: one visibility query per pass.
const DefaultClosedRunAuditInterval = time.Minute

// ClosedRunLookback is how far back a starting worker looks for runs
// Temporal ended while no worker ran.
const ClosedRunLookback = 7 * 24 * time.Hour

// DefaultStopTimeout is how long a stopping worker waits for in-flight activities.
const DefaultStopTimeout = 30 * time.Second

// WithDefaults returns c with zero fields set to their defaults. The
// defaults are applied once: the result is marked, and WithDefaults on it
// (or on a copy changed since) returns it unchanged, so a command that needs
// the defaulted values before Run (warden dev's data directory) can default
// the config itself and hand it on. A field cleared after WithDefaults
// therefore stays zero.
func (c Config) WithDefaults() Config {
	if c.hasDefaults {
		return c
	}
	c.TemporalAddress = cmp.Or(c.TemporalAddress, DefaultTemporalAddress)
	c.TemporalCompression = cmp.Or(c.TemporalCompression, "auto")
	c.Namespace = cmp.Or(c.Namespace, "default")
	c.TaskQueue = cmp.Or(c.TaskQueue, warden.DefaultTaskQueue)
	c.DataDir = cmp.Or(c.DataDir, ".warden")
	c.SandboxMode = cmp.Or(c.SandboxMode, "isolated")
	c.LedgerPath = cmp.Or(c.LedgerPath, filepath.Join(c.DataDir, "refunds.jsonl"))
	if c.ModelBaseURL == "" {
		c.ModelName = cmp.Or(c.ModelName, "scripted/demo")
	}
	if c.AuditSealInterval == 0 {
		c.AuditSealInterval = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.StopTimeout = cmp.Or(c.StopTimeout, DefaultStopTimeout)
	c.WorkspaceSweepInterval = cmp.Or(c.WorkspaceSweepInterval, DefaultWorkspaceSweepInterval)
	c.ClosedRunAuditInterval = cmp.Or(c.ClosedRunAuditInterval, DefaultClosedRunAuditInterval)
	c.WorkflowCacheSize = cmp.Or(c.WorkflowCacheSize, DefaultWorkflowCacheSize)
	c.hasDefaults = true
	return c
}

// defaulted is a Config that WithDefaults has filled in. The public entry
// points (Run, Build, Dial) make one with withDefaults, once, and the
// functions under them take it instead of a Config, so none can forget the
// defaults or apply them again.
type defaulted struct{ Config }

// withDefaults applies c's defaults (WithDefaults) for the functions under
// an entry point.
func withDefaults(c Config) defaulted { return defaulted{c.WithDefaults()} }

// Validate names every bad field of c (after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	switch c.TemporalCompression {
	case "auto", "gzip", "none":
	default:
		errs = append(errs, fmt.Errorf("temporal compression %q is not auto, gzip or none (set WARDEN_TEMPORAL_COMPRESSION or --temporal-compression)", c.TemporalCompression))
	}
	if c.WorkflowCacheSize < 0 {
		errs = append(errs, fmt.Errorf("workflow cache size %d is negative (set WARDEN_WORKFLOW_CACHE_SIZE or --workflow-cache-size to a positive number)", c.WorkflowCacheSize))
	}
	if c.ModelBaseURL != "" && c.ModelName == "" {
		errs = append(errs, errors.New("model name is required with a model base URL (set WARDEN_MODEL or --model)"))
	}
	if c.ModelBaseURL == "" && c.ModelAPIKey != "" {
		errs = append(errs, errors.New("a model API key is set but no model base URL (set WARDEN_MODEL_BASE_URL or --model-base-url)"))
	}
	switch c.SandboxDiskQuota {
	case "", "tmpfs", "budget", "none":
	default:
		errs = append(errs, fmt.Errorf("sandbox disk quota %q is not a mode (set WARDEN_SANDBOX_DISK_QUOTA or --sandbox-disk-quota to tmpfs, budget, none, or empty for the best available)", c.SandboxDiskQuota))
	}
	if c.RefundDelay < 0 {
		errs = append(errs, fmt.Errorf("refund delay must not be negative, got %s", c.RefundDelay))
	}
	return errors.Join(errs...)
}
