package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wardenhq/warden/sandbox"
	"github.com/wardenhq/warden/worker"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "warden",
		Short:         "Durable, governed AI agent runs on Temporal",
		Long:          "Warden runs LLM plan-act loops as Temporal workflows: every tool call is checked by OPA policy,\nrun in a sandbox, written to an append-only audit log, and paused for human approval when risky.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newWorkerCmd(), newRunCmd(), newStatusCmd(), newPendingCmd(),
		newDecideCmd("approve"), newDecideCmd("reject"), newApprovalsCmd(), newKeygenCmd(), newAuditCmd(), newDevCmd(), newBenchCmd(), newSandboxCmd())
	return root
}

// env reads WARDEN_<name>, falling back to def.
func env(name, def string) string { return cmp.Or(os.Getenv("WARDEN_"+name), def) }

func envDuration(name string) time.Duration {
	d, err := time.ParseDuration(os.Getenv("WARDEN_" + name))
	if err != nil {
		return 0
	}
	return d
}

func envInt64(name string) int64 {
	n, err := strconv.ParseInt(os.Getenv("WARDEN_"+name), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func envInt(name string) int {
	n, err := strconv.Atoi(os.Getenv("WARDEN_" + name))
	if err != nil {
		return 0
	}
	return n
}

// connFlags binds the flags every command that talks to Temporal needs.
func connFlags(fs *pflag.FlagSet, cfg *worker.Config) {
	fs.StringVar(&cfg.TemporalAddress, "address", env("TEMPORAL_ADDRESS", worker.DefaultTemporalAddress), "Temporal frontend host:port (WARDEN_TEMPORAL_ADDRESS)")
	fs.StringVar(&cfg.Namespace, "namespace", env("NAMESPACE", "default"), "Temporal namespace (WARDEN_NAMESPACE)")
	fs.StringVar(&cfg.TaskQueue, "task-queue", env("TASK_QUEUE", "warden"), "task queue (WARDEN_TASK_QUEUE)")
	fs.StringVar(&cfg.TemporalCompression, "temporal-compression", env("TEMPORAL_COMPRESSION", "auto"), "gRPC compression to Temporal: auto (none to loopback, gzip otherwise), gzip or none (WARDEN_TEMPORAL_COMPRESSION)")
}

// storeFlags binds the flags that locate the audit store.
func storeFlags(fs *pflag.FlagSet, cfg *worker.Config) {
	fs.StringVar(&cfg.DatabaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL audit database URL; empty uses the embedded SQLite store in the data dir (WARDEN_DATABASE_URL)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("DATA_DIR", ".warden"), "folder for the SQLite audit store, workspaces and the demo ledger (WARDEN_DATA_DIR)")
}

// workerFlags binds everything a worker needs.
func workerFlags(fs *pflag.FlagSet, cfg *worker.Config) {
	connFlags(fs, cfg)
	storeFlags(fs, cfg)
	fs.StringVar(&cfg.PolicyDir, "policy-dir", env("POLICY_DIR", ""), "directory of Rego policies to use instead of the embedded default bundle (WARDEN_POLICY_DIR)")
	fs.StringVar(&cfg.ModelBaseURL, "model-base-url", env("MODEL_BASE_URL", ""), "OpenAI-compatible API base URL; empty uses the scripted model (WARDEN_MODEL_BASE_URL)")
	fs.StringVar(&cfg.ModelAPIKey, "model-api-key", env("MODEL_API_KEY", ""), "API key for the model endpoint (WARDEN_MODEL_API_KEY)")
	fs.StringVar(&cfg.ModelName, "model", env("MODEL", ""), "default model name (WARDEN_MODEL); scripted/demo with the scripted model")
	fs.StringVar(&cfg.ModelsFile, "models-file", env("MODELS_FILE", ""), "named model configs: endpoint, key env/file, model ID, prices, context window (WARDEN_MODELS_FILE)")
	fs.StringVar(&cfg.ScenarioFile, "scenario-file", env("SCENARIO_FILE", ""), "extra scripted-model scenarios, JSON (WARDEN_SCENARIO_FILE)")
	fs.StringVar(&cfg.SandboxMode, "sandbox-mode", env("SANDBOX_MODE", ""), "tool isolation mode: isolated (default; refuses to start where the host cannot isolate) or process (degraded, explicit) (WARDEN_SANDBOX_MODE)")
	fs.BoolVar(&cfg.SandboxProcessAsRoot, "sandbox-process-as-root", env("SANDBOX_PROCESS_AS_ROOT", "") == "1", "accept --sandbox-mode process when the worker runs as root: every tool then runs as host root with all capabilities (WARDEN_SANDBOX_PROCESS_AS_ROOT=1)")
	fs.IntVar(&cfg.SandboxHostUID, "sandbox-host-uid", envInt("SANDBOX_HOST_UID"), fmt.Sprintf("unprivileged host uid the sandbox's root is (and owns the workspace's files as) when the worker runs as root; default %d; best a subordinate id no other process uses (WARDEN_SANDBOX_HOST_UID)", sandbox.DefaultHostID))
	fs.IntVar(&cfg.SandboxHostGID, "sandbox-host-gid", envInt("SANDBOX_HOST_GID"), fmt.Sprintf("unprivileged host gid of the sandbox's root when the worker runs as root; default %d (WARDEN_SANDBOX_HOST_GID)", sandbox.DefaultHostID))
	fs.StringVar(&cfg.SandboxCgroupParent, "sandbox-cgroup-parent", env("SANDBOX_CGROUP_PARENT", ""), "delegated cgroup v2 directory (memory and pids controllers, no processes) under which each tool run gets its cgroup; empty finds the best the host offers (WARDEN_SANDBOX_CGROUP_PARENT)")
	fs.StringVar(&cfg.SandboxDiskQuota, "sandbox-disk-quota", env("SANDBOX_DISK_QUOTA", ""), "how each run's workspace is capped: empty for the best (tmpfs as root in isolated mode, else budget), tmpfs (refuses to start where it does not work), budget (walk after each call: after the fact), none (WARDEN_SANDBOX_DISK_QUOTA)")
	fs.Int64Var(&cfg.SandboxDiskBytes, "sandbox-disk-bytes", envInt64("SANDBOX_DISK_BYTES"), fmt.Sprintf("bytes a run's workspace may hold across its calls; default %d, negative: no cap (WARDEN_SANDBOX_DISK_BYTES)", sandbox.DefaultDiskBytes))
	fs.Int64Var(&cfg.SandboxDiskInodes, "sandbox-disk-inodes", envInt64("SANDBOX_DISK_INODES"), fmt.Sprintf("files and directories a run's workspace may hold; default %d, negative: no cap (WARDEN_SANDBOX_DISK_INODES)", sandbox.DefaultDiskInodes))
	fs.DurationVar(&cfg.WorkspaceSweepInterval, "workspace-sweep-interval", envDuration("WORKSPACE_SWEEP_INTERVAL"), fmt.Sprintf("how often the worker removes the workspaces of closed run chains; default %s, negative: never (WARDEN_WORKSPACE_SWEEP_INTERVAL)", worker.DefaultWorkspaceSweepInterval))
	fs.DurationVar(&cfg.ClosedRunAuditInterval, "closed-run-audit-interval", envDuration("CLOSED_RUN_AUDIT_INTERVAL"), fmt.Sprintf("how often the worker writes run_finished for runs Temporal terminated or timed out; default %s, negative: never (WARDEN_CLOSED_RUN_AUDIT_INTERVAL)", worker.DefaultClosedRunAuditInterval))
	fs.StringVar(&cfg.LedgerPath, "ledger", env("LEDGER", ""), "demo refund ledger file; default <data-dir>/refunds.jsonl (WARDEN_LEDGER)")
	fs.StringVar(&cfg.EscalationWebhook, "escalation-webhook", env("ESCALATION_WEBHOOK", ""), "URL that receives a JSON POST when a pending approval is escalated (WARDEN_ESCALATION_WEBHOOK)")
	fs.DurationVar(&cfg.AuditSealInterval, "audit-seal-interval", envDuration("AUDIT_SEAL_INTERVAL"), "how often the worker seals the audit log; default 1m, negative seals only at stop (WARDEN_AUDIT_SEAL_INTERVAL)")
	fs.StringVar(&cfg.AuditSealKey, "audit-seal-key", env("AUDIT_SEAL_KEY", ""), "Ed25519 private key that signs the worker's seals (warden audit keygen); empty leaves seals unsigned (WARDEN_AUDIT_SEAL_KEY)")
	fs.StringVar(&cfg.AuditAnchor, "audit-anchor", env("AUDIT_ANCHOR", ""), "append-only file outside the database that every seal is also written to (WARDEN_AUDIT_ANCHOR)")
	fs.DurationVar(&cfg.RefundDelay, "refund-delay", envDuration("REFUND_DELAY"), "simulated payment provider latency of issue_refund (WARDEN_REFUND_DELAY)")
	// Operations: metrics endpoint and graceful shutdown (docs/configuration.md).
	fs.StringVar(&cfg.MetricsAddress, "metrics-address", env("METRICS_ADDRESS", ""), "host:port for Prometheus /metrics and /healthz, e.g. :9464; empty disables (WARDEN_METRICS_ADDRESS)")
	fs.DurationVar(&cfg.StopTimeout, "stop-timeout", envDuration("STOP_TIMEOUT"), "on SIGTERM, how long in-flight activities may finish before they are cancelled; default 30s (WARDEN_STOP_TIMEOUT)")
	fs.IntVar(&cfg.WorkflowCacheSize, "workflow-cache-size", envInt("WORKFLOW_CACHE_SIZE"), fmt.Sprintf("runs the worker keeps in memory between tasks (bounds its memory; an evicted run is replayed from history when it wakes); default %d (WARDEN_WORKFLOW_CACHE_SIZE)", worker.DefaultWorkflowCacheSize))
}

func newLogger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("WARDEN_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func newWorkerCmd() *cobra.Command {
	var cfg worker.Config
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a Warden worker (workflows + activities) until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = newLogger()
			cfg = cfg.WithDefaults() // once, here: Run takes it as it is
			// Tracing: OTLP when OTEL_EXPORTER_OTLP_*ENDPOINT is set (cmd/warden/tracing.go).
			flush, err := setupTracing(cmd.Context(), &cfg)
			if err != nil {
				return err
			}
			defer flush()
			return worker.Run(cmd.Context(), cfg, func(d *worker.Deps) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warden worker ready on task queue %q (Ctrl-C to stop)\n", cfg.TaskQueue)
			})
		},
	}
	workerFlags(cmd.Flags(), &cfg)
	return cmd
}
