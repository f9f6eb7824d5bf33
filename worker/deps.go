package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/llm"
	"github.com/wardenhq/warden/policies"
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
)

// Deps are the built dependencies of a worker.
type Deps struct {
	Activities *activities.Activities
	Audit      audit.Store
	// ModelBaseURL is the endpoint in use (the scripted model's when none was configured).
	ModelBaseURL string
	// Scripted is the in-process scripted model, nil with a real endpoint.
	Scripted *llm.Scripted
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
func Build(ctx context.Context, cfg Config) (_ *Deps, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	d := &Deps{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	ledger, err := filepath.Abs(cfg.LedgerPath)
	if err != nil {
		return nil, fmt.Errorf("ledger path: %w", err)
	}

	store, err := audit.Open(ctx, cfg.DatabaseURL, filepath.Join(dataDir, "audit.db"))
	if err != nil {
		return nil, fmt.Errorf("audit store: %w", err)
	}
	d.Audit = store
	d.closers = append(d.closers, func() { _ = store.Close() })

	engine, err := policies.New(ctx, policies.Options{Dir: cfg.PolicyDir})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}

	sb, err := sandbox.New(sandbox.Options{Mode: cfg.SandboxMode})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	reg, err := tools.NewRegistry(tools.Options{LedgerPath: ledger, RefundDelay: cfg.RefundDelay})
	if err != nil {
		return nil, fmt.Errorf("tools: %w", err)
	}

	baseURL := cfg.ModelBaseURL
	if baseURL == "" {
		d.Scripted, err = llm.NewScripted()
		if err != nil {
			return nil, fmt.Errorf("scripted model: %w", err)
		}
		if cfg.ScenarioFile != "" {
			if err := d.Scripted.LoadFile(cfg.ScenarioFile); err != nil {
				return nil, err
			}
		}
		var stop func()
		baseURL, stop, err = d.Scripted.Listen("127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, stop)
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

	d.Activities = &activities.Activities{
		Model:         model,
		Prices:        model,
		ModelPolicy:   engine,
		Policy:        engine,
		Tools:         toolBox{reg: reg, sb: sb},
		Audit:         store,
		WorkspaceRoot: filepath.Join(dataDir, "workspaces"),
		SandboxMode:   sb.Mode(),
		DefaultModel:  cfg.ModelName,
	}
	if cfg.EscalationWebhook != "" {
		d.Activities.Escalations = newWebhook(cfg.EscalationWebhook)
	}
	return d, nil
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
		IdempotencyKey: in.IdempotencyKey, Obligations: in.Obligations,
	})
}
