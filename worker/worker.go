package worker

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/sandbox"
	"github.com/wardenhq/warden/workflows"
)

// Run builds the dependencies, connects to Temporal, ensures the search
// attributes exist, and serves the task queue until ctx is cancelled.
// ready, when non-nil, is called once the worker polls.
func Run(ctx context.Context, cfg Config, ready func(*Deps)) error {
	return run(ctx, withDefaults(cfg), ready)
}

// run is Run on a defaulted config.
func run(ctx context.Context, cfg defaulted, ready func(*Deps)) error {
	deps, err := build(ctx, cfg)
	if err != nil {
		return err
	}
	defer deps.Close()
	log := cfg.Logger
	if deps.Scripted != nil {
		log.Warn("no model endpoint configured: using the in-process SCRIPTED model (set WARDEN_MODEL_BASE_URL for a real one)",
			"base_url", deps.ModelBaseURL, "scenarios", deps.Scripted.Names())
	}
	if mode := deps.Activities.SandboxMode; mode != sandbox.ModeIsolated {
		log.Warn("SANDBOX DEGRADED: tools run in mode "+mode+", without namespaces, Landlock or seccomp: no file system or network confinement; policies see sandbox_mode and the default policy refuses high-risk tools",
			"sandbox_mode", mode, "host", "run `warden sandbox check`")
	}
	log.Info("worker dependencies ready",
		"audit", auditKind(cfg.Config), "policy", policyKind(cfg.Config), "sandbox_mode", deps.Activities.SandboxMode,
		"sandbox_cgroup", deps.SandboxCgroup.String(), "sandbox_disk_quota", deps.Sandbox.Quota().String(), "model", cfg.ModelName)
	// Observability: metrics and spans around the activities' dependencies,
	// the /metrics server, Temporal's tracing interceptor (worker/observe.go).
	obs, err := observe(cfg, deps)
	if err != nil {
		return err
	}
	defer obs.close()

	tc, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := EnsureSearchAttributes(ctx, tc, cfg.Namespace); err != nil {
		return err
	}
	deps.Activities.History = historyReader{tc: tc}
	// Workspaces of closed run chains are removed (worker/sweeper.go).
	if cfg.WorkspaceSweepInterval > 0 {
		stopSweep := SweepEvery(tc, deps, cfg.WorkspaceSweepInterval, log)
		defer stopSweep()
	}
	// Runs Temporal terminated or timed out get their run_finished row
	// (worker/closed_runs.go).
	if cfg.ClosedRunAuditInterval > 0 {
		stopClosed := AuditClosedRunsEvery(tc, cfg.Namespace, deps.Audit, cfg.ClosedRunAuditInterval, ClosedRunLookback, log)
		defer stopClosed()
	}
	// WorkerStopTimeout: on stop, in-flight activities get this long to
	// finish before their context is cancelled (graceful shutdown).
	sdkworker.SetStickyWorkflowCacheSize(cfg.WorkflowCacheSize)
	w := sdkworker.New(tc, cfg.TaskQueue, sdkworker.Options{WorkerStopTimeout: cfg.StopTimeout, Interceptors: append(obs.interceptors, deps.Refusals.Interceptor())})
	Register(w, deps)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", cfg.TaskQueue, err)
	}
	defer w.Stop()
	log.Info("worker polling", "temporal", cfg.TemporalAddress, "namespace", cfg.Namespace, "task_queue", cfg.TaskQueue)
	if ready != nil {
		ready(deps)
	}
	<-ctx.Done()
	log.Info("worker stopping")
	return nil
}

// Register registers the AgentRun workflow and the activities on w.
func Register(w sdkworker.Registry, deps *Deps) {
	w.RegisterWorkflowWithOptions(workflows.AgentRun, workflow.RegisterOptions{Name: warden.WorkflowAgentRun})
	w.RegisterActivityWithOptions(deps.Activities, activity.RegisterOptions{})
}

// Dial connects to the Temporal frontend named by cfg.
func Dial(ctx context.Context, cfg Config) (client.Client, error) {
	return dial(ctx, withDefaults(cfg))
}

// dial is Dial on a defaulted config.
func dial(ctx context.Context, cfg defaulted) (client.Client, error) {
	tc, err := client.DialContext(ctx, client.Options{
		HostPort:          cfg.TemporalAddress,
		Namespace:         cfg.Namespace,
		Logger:            tlog.NewStructuredLogger(cfg.Logger.With("component", "temporal")),
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: grpcCompression(cfg.TemporalCompression, cfg.TemporalAddress)},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (is the server running? `make dev` starts one): %w", cfg.TemporalAddress, err)
	}
	return tc, nil
}

// EnsureSearchAttributes registers Warden's Keyword search attributes in
// namespace, skipping those that already exist.
func EnsureSearchAttributes(ctx context.Context, tc client.Client, namespace string) error {
	ops := tc.OperatorService()
	existing, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, name := range warden.SearchAttributes {
		t, ok := existing.GetCustomAttributes()[name]
		if !ok {
			missing[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
			continue
		}
		if t != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			return fmt.Errorf("search attribute %s exists with type %s; Warden needs Keyword", name, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

func auditKind(cfg Config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite"
}

func policyKind(cfg Config) string {
	if cfg.PolicyDir != "" {
		return cfg.PolicyDir
	}
	return "embedded default bundle"
}

// grpcCompression is the SDK's setting for mode ("auto", "gzip" or
// "none") on a connection to address: auto compresses unless the host is
// a loopback address or localhost, where gzip costs CPU and saves nothing.
func grpcCompression(mode, address string) client.GrpcCompression {
	switch mode {
	case "none":
		return &client.GrpcCompressionNone{}
	case "gzip":
		return &client.GrpcCompressionGzip{}
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	if host == "localhost" {
		return &client.GrpcCompressionNone{}
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return &client.GrpcCompressionNone{}
	}
	return &client.GrpcCompressionGzip{}
}
