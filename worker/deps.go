package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/egress"
	"github.com/wardenhq/warden/llm"
	"github.com/wardenhq/warden/policies"
	"github.com/wardenhq/warden/redact"
	"github.com/wardenhq/warden/sandbox"
	"github.com/wardenhq/warden/tools"
)

// Compile-time proof that the adapters satisfy the activities' interfaces.
var (
	_ activities.Model       = (*llm.Router)(nil)
	_ activities.Prices      = (*llm.Router)(nil)
	_ activities.ModelPolicy = (*policies.Engine)(nil)
	_ activities.Policy      = (*policies.Engine)(nil)
	_ activities.Audit       = (audit.Store)(nil)
	_ activities.Tools       = toolBox{}
	_ tools.Egress           = (*egress.Proxy)(nil)
)

// Deps are the built dependencies of a worker.
type Deps struct {
	Activities *activities.Activities
	Audit      audit.Store
	// ModelBaseURL is the endpoint in use (the scripted model's when none was configured).
	ModelBaseURL string
	// Scripted is the in-process scripted model, nil with a real endpoint.
	Scripted *llm.Scripted
	// SandboxCgroup is the cgroup layer that bounds each tool run's memory
	// and processes (none: rlimits only).
	SandboxCgroup sandbox.CgroupReport
	// Sandbox runs the tools; the workspace sweeper removes workspaces
	// through it (unmounting their tmpfs).
	Sandbox *sandbox.Runner
	// WorkspaceRoot is the folder of the runs' workspaces.
	WorkspaceRoot string
	// Refusals audits the approve Updates the workflow's validator refused;
	// its Interceptor goes into the Temporal worker's options.
	Refusals *RefusalRecorder
	closers  []func()
}

// Close releases everything Build opened.
func (d *Deps) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// Build constructs every dependency from cfg. Tests call it to run the real
// activities in Temporal's test environment.
func Build(ctx context.Context, cfg Config) (*Deps, error) {
	return build(ctx, withDefaults(cfg))
}

// build is Build on a defaulted config, in stages: the data paths, the
// audit store, the policy engine, the sandbox and tools, the model, and
// the activities over them. On an error it closes what it opened.
func build(ctx context.Context, cfg defaulted) (_ *Deps, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	d := &Deps{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	dataDir, ledger, err := dataPaths(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.openAudit(ctx, cfg, dataDir); err != nil {
		return nil, err
	}
	d.Refusals = NewRefusalRecorder(d.Audit, cfg.Logger)
	d.closers = append(d.closers, d.Refusals.Close) // before the store closes
	engine, err := openPolicy(ctx, cfg)
	if err != nil {
		return nil, err
	}
	tb, err := d.openTools(cfg, dataDir, ledger)
	if err != nil {
		return nil, err
	}
	model, err := d.openModel(cfg)
	if err != nil {
		return nil, err
	}
	d.Activities = newActivities(cfg, d, engine, model, tb)
	return d, nil
}

// dataPaths creates the data directory and returns its absolute path and
// the refund ledger's.
func dataPaths(cfg defaulted) (dataDir, ledger string, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return "", "", fmt.Errorf("data dir: %w", err)
	}
	dataDir, err = filepath.Abs(cfg.DataDir)
	if err != nil {
		return "", "", fmt.Errorf("data dir: %w", err)
	}
	ledger, err = filepath.Abs(cfg.LedgerPath)
	if err != nil {
		return "", "", fmt.Errorf("ledger path: %w", err)
	}
	return dataDir, ledger, nil
}

// openAudit opens the audit store (PostgreSQL, or SQLite in dataDir)
// behind its redactor as d.Audit and starts sealing it, signed and
// anchored as cfg says. d.Close stops the sealing (a final seal), then
// closes the anchor and the store.
func (d *Deps) openAudit(ctx context.Context, cfg defaulted, dataDir string) error {
	store, err := audit.Open(ctx, cfg.DatabaseURL, filepath.Join(dataDir, "audit.db"))
	if err != nil {
		return fmt.Errorf("audit store: %w", err)
	}
	d.closers = append(d.closers, func() { _ = store.Close() })
	redactor, err := auditRedactor(cfg)
	if err != nil {
		return err
	}
	store = audit.WithRedactor(store, redactor)
	d.Audit = store
	anchor, sealKey, err := sealing(store, cfg)
	if err != nil {
		return err
	}
	if anchor != nil {
		d.closers = append(d.closers, func() { _ = anchor.Close() })
	}
	stopSealing := audit.SealAndAnchorEvery(store, cfg.AuditSealInterval, anchor, sealKey, func(err error) { cfg.Logger.Warn("audit seal", "error", err) })
	d.closers = append(d.closers, stopSealing)
	return nil
}

// auditRedactor redacts secrets and personal data before any audit
// backend sees them, with rules from policy data (data.warden.redaction).
func auditRedactor(cfg defaulted) (*redact.Redactor, error) {
	redaction, err := policies.RedactionConfig(policies.Options{Dir: cfg.PolicyDir})
	if err != nil {
		return nil, fmt.Errorf("audit redaction: %w", err)
	}
	redactor, err := redact.FromConfig(redaction)
	if err != nil {
		return nil, fmt.Errorf("audit redaction: %w", err)
	}
	return redactor, nil
}

// openPolicy compiles the policy (cfg.PolicyDir, or the embedded bundle).
func openPolicy(ctx context.Context, cfg defaulted) (*policies.Engine, error) {
	engine, err := policies.New(ctx, policies.Options{Dir: cfg.PolicyDir})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return engine, nil
}

// openTools starts the sandbox (d.Sandbox, d.SandboxCgroup, workspaces
// under dataDir) and the tool registry, whose network goes through an
// egress proxy that logs and audits every connection.
func (d *Deps) openTools(cfg defaulted, dataDir, ledger string) (toolBox, error) {
	sb, err := sandbox.New(sandbox.Options{Mode: cfg.SandboxMode, ProcessAsRoot: cfg.SandboxProcessAsRoot, HostUID: cfg.SandboxHostUID, HostGID: cfg.SandboxHostGID,
		SelfPath: besideWorker(cfg.SandboxInit, "warden-sandbox-init"), CgroupParent: cfg.SandboxCgroupParent,
		DiskQuota: cfg.SandboxDiskQuota, DiskBytes: cfg.SandboxDiskBytes, DiskInodes: cfg.SandboxDiskInodes})
	if err != nil {
		return toolBox{}, fmt.Errorf("sandbox: %w", err)
	}
	d.SandboxCgroup = sb.Cgroup()
	d.Sandbox = sb
	d.WorkspaceRoot = filepath.Join(dataDir, "workspaces")
	proxy := egress.New(egress.Options{Log: d.egressLog(cfg)})
	reg, err := tools.NewRegistry(tools.Options{LedgerPath: ledger, RefundDelay: cfg.RefundDelay, Egress: proxy,
		ToolBinary: besideWorker(cfg.ToolBinary, "warden-tools")})
	if err != nil {
		return toolBox{}, fmt.Errorf("tools: %w", err)
	}
	return toolBox{reg: reg, sb: sb}, nil
}

// egressLog is cfg.EgressLog, or by default a function that logs each
// connection and writes its egress_connection audit event to d.Audit.
func (d *Deps) egressLog(cfg defaulted) func(egress.Connection) {
	if cfg.EgressLog != nil {
		return cfg.EgressLog
	}
	return func(c egress.Connection) {
		cfg.Logger.Info("egress", "call", c.Call, "target", c.Target, "allowed", c.Allowed, "reason", c.Reason,
			"bytes_up", c.BytesUp, "bytes_down", c.BytesDown, "duration", c.End.Sub(c.Start))
		if err := auditEgress(d.Audit, c); err != nil {
			cfg.Logger.Error("audit egress connection", "call", c.Call, "target", c.Target, "error", err)
		}
	}
}

// openModel routes model calls: to cfg.ModelBaseURL, or to the in-process
// scripted model (d.Scripted) when none is configured, with the models of
// cfg.ModelsFile before the default ones. d.ModelBaseURL is the endpoint.
func (d *Deps) openModel(cfg defaulted) (*llm.Router, error) {
	baseURL := cfg.ModelBaseURL
	if baseURL == "" {
		var err error
		if baseURL, err = d.startScripted(cfg); err != nil {
			return nil, err
		}
	}
	d.ModelBaseURL = baseURL
	endpoint, err := llm.New(llm.Config{BaseURL: baseURL, APIKey: cfg.ModelAPIKey, Model: cfg.ModelName})
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	models := llm.DefaultModels
	if cfg.ModelsFile != "" {
		extra, err := llm.LoadModels(cfg.ModelsFile)
		if err != nil {
			return nil, err
		}
		models = append(extra, models...)
	}
	model, err := llm.NewRouter(endpoint, models)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return model, nil
}

// startScripted starts the scripted model (d.Scripted, with the scenarios
// of cfg.ScenarioFile) on a loopback port and returns its base URL; d.Close
// stops it.
func (d *Deps) startScripted(cfg defaulted) (string, error) {
	var err error
	d.Scripted, err = llm.NewScripted()
	if err != nil {
		return "", fmt.Errorf("scripted model: %w", err)
	}
	if cfg.ScenarioFile != "" {
		if err := d.Scripted.LoadFile(cfg.ScenarioFile); err != nil {
			return "", err
		}
	}
	baseURL, stop, err := d.Scripted.Listen("127.0.0.1:0")
	if err != nil {
		return "", err
	}
	d.closers = append(d.closers, stop)
	return baseURL, nil
}

// newActivities are the activities over the built dependencies.
func newActivities(cfg defaulted, d *Deps, engine *policies.Engine, model *llm.Router, tb toolBox) *activities.Activities {
	a := &activities.Activities{
		Model:         model,
		Prices:        model,
		Payloads:      d.Audit,
		ModelPolicy:   engine,
		Policy:        engine,
		Tools:         tb,
		Audit:         d.Audit,
		WorkspaceRoot: d.WorkspaceRoot,
		Namespace:     cfg.Namespace,
		SandboxMode:   tb.sb.Mode(),
		DefaultModel:  cfg.ModelName,
	}
	if cfg.EscalationWebhook != "" {
		a.Escalations = newWebhook(cfg.EscalationWebhook)
	}
	return a
}

// besideWorker returns configured, or the file name next to the running
// executable when it exists there, or "" (the worker binary itself).
func besideWorker(configured, name string) string {
	if configured != "" {
		return configured
	}
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), name)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

// toolBox adapts the tool registry and the sandbox to activities.Tools.
type toolBox struct {
	reg *tools.Registry
	sb  *sandbox.Runner
}

func (t toolBox) Spec(name string) (warden.ToolSpec, bool)         { return t.reg.Spec(name) }
func (t toolBox) Specs(allowed []string) []warden.ToolSpec         { return t.reg.Specs(allowed) }
func (t toolBox) Validate(name string, args json.RawMessage) error { return t.reg.Validate(name, args) }

func (t toolBox) Run(ctx context.Context, in activities.ToolRun) (warden.ToolOutput, error) {
	if t.sb == nil {
		return warden.ToolOutput{}, errors.New("no sandbox configured")
	}
	return t.reg.Run(ctx, t.sb, tools.RunInput{
		Tool: in.Tool, Args: in.Args, Workspace: in.Workspace,
		IdempotencyKey: in.IdempotencyKey, Obligations: in.Obligations, Call: in.Call,
	})
}

// egressMessage is the audit message of a connection: the target, the
// address dialed or refused (after resolution), why, and the bytes.
func egressMessage(c egress.Connection) string {
	var parts []string
	if c.Address != "" {
		parts = append(parts, "address "+c.Address)
	}
	if c.Reason != "" {
		parts = append(parts, c.Reason)
	}
	parts = append(parts, fmt.Sprintf("%d bytes up, %d down", c.BytesUp, c.BytesDown))
	return fmt.Sprintf("%s %s (%s)", map[bool]string{true: "connected to", false: "refused"}[c.Allowed], c.Target, strings.Join(parts, "; "))
}

// auditEgress writes one egress_connection audit event for a connection
// the proxy opened or refused.
func auditEgress(store audit.Store, c egress.Connection) error {
	ref, ok := activities.ParseCallRef(c.Call)
	if !ok {
		return fmt.Errorf("connection without a call reference (%q)", c.Call)
	}
	verdict := warden.VerdictAllow
	if !c.Allowed {
		verdict = warden.VerdictDeny
	}
	result, _ := json.Marshal(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return store.Append(ctx, warden.AuditEvent{
		ID:         warden.EventID(ref.Run.WorkflowID, ref.Run.RunID, ref.Step, ref.CallID, warden.EventEgressConnection, fmt.Sprintf("%s@%d", c.Target, c.Start.UnixNano())),
		Type:       warden.EventEgressConnection,
		Tenant:     ref.Run.Tenant,
		WorkflowID: ref.Run.WorkflowID,
		RunID:      ref.Run.RunID,
		Step:       ref.Step,
		CallID:     ref.CallID,
		Actor:      "sandbox",
		Decision:   verdict,
		Result:     result,
		Message:    egressMessage(c),
		OccurredAt: c.Start.UTC(),
	})
}

// sealing makes store sign its seals with cfg.AuditSealKey and opens
// cfg.AuditAnchor; either may be unset. The anchor is closed after the
// final seal (closers run in reverse).
func sealing(store audit.Store, cfg defaulted) (*audit.Anchor, *audit.PublicKey, error) {
	var key *audit.PublicKey
	if cfg.AuditSealKey != "" {
		signer, err := audit.LoadSealSigner(cfg.AuditSealKey)
		if err != nil {
			return nil, nil, fmt.Errorf("audit seal key %s: %w (create one with: warden audit keygen --out FILE --key-id ID)", cfg.AuditSealKey, err)
		}
		if err := audit.SetSealSigner(store, signer); err != nil {
			return nil, nil, err
		}
		pub := signer.Public()
		key = &pub
	} else {
		cfg.Logger.Warn("audit seals are not signed: anyone with the database writer credential can forge one; set WARDEN_AUDIT_SEAL_KEY (docs/audit.md)")
	}
	if cfg.AuditAnchor == "" {
		return nil, key, nil
	}
	anchor, err := audit.OpenAnchor(cfg.AuditAnchor)
	if err != nil {
		return nil, nil, fmt.Errorf("audit anchor %s: %w", cfg.AuditAnchor, err)
	}
	return anchor, key, nil
}
