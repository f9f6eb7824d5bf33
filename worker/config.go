package worker

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/wardenhq/warden"
)

// Config configures a worker. Zero fields take the defaults documented on
// each field; cmd/warden fills it from flags and WARDEN_* variables.
type Config struct {
	// TemporalAddress is the Temporal frontend host:port. Default 127.0.0.1:7233.
	TemporalAddress string
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
	// SandboxMode is the tool isolation mode. Default "process".
	SandboxMode string
	// LedgerPath is the demo issue_refund tool's ledger. Default <DataDir>/refunds.jsonl.
	LedgerPath string
	// RefundDelay makes issue_refund wait after writing its ledger entry,
	// simulating a slow payment provider (crash tests use it).
	RefundDelay time.Duration
	// EscalationWebhook receives a JSON POST when a pending approval reaches
	// the escalation time the policy sets. Empty means escalations are only
	// audited.
	EscalationWebhook string
	// Logger receives the worker's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultTemporalAddress is where a local dev server listens.
const DefaultTemporalAddress = "127.0.0.1:7233"

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.TemporalAddress = cmp.Or(c.TemporalAddress, DefaultTemporalAddress)
	c.Namespace = cmp.Or(c.Namespace, "default")
	c.TaskQueue = cmp.Or(c.TaskQueue, warden.DefaultTaskQueue)
	c.DataDir = cmp.Or(c.DataDir, ".warden")
	c.SandboxMode = cmp.Or(c.SandboxMode, "process")
	c.LedgerPath = cmp.Or(c.LedgerPath, filepath.Join(c.DataDir, "refunds.jsonl"))
	if c.ModelBaseURL == "" {
		c.ModelName = cmp.Or(c.ModelName, "scripted/demo")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate names every bad field of c (after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	if c.ModelBaseURL != "" && c.ModelName == "" {
		errs = append(errs, errors.New("model name is required with a model base URL (set WARDEN_MODEL or --model)"))
	}
	if c.ModelBaseURL == "" && c.ModelAPIKey != "" {
		errs = append(errs, errors.New("a model API key is set but no model base URL (set WARDEN_MODEL_BASE_URL or --model-base-url)"))
	}
	if c.RefundDelay < 0 {
		errs = append(errs, fmt.Errorf("refund delay must not be negative, got %s", c.RefundDelay))
	}
	return errors.Join(errs...)
}
