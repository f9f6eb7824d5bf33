package warden

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// RunRequest is the single input of the AgentRun workflow.
type RunRequest struct {
	// Tenant scopes policy, audit and search. Required.
	Tenant string `json:"tenant"`
	// Requester is the person or service on whose behalf the agent acts.
	// Required; a requester may never approve their own run's calls.
	Requester string `json:"requester"`
	// Goal is the instruction the model works on. Required.
	Goal string `json:"goal"`
	// Model names the model to call (for the scripted model: "scripted/<scenario>").
	// Empty means the worker's default model.
	Model string `json:"model,omitempty"`
	// Fallbacks are models tried in order when Model fails persistently or
	// the policy refuses it for the tenant.
	Fallbacks []string `json:"fallbacks,omitempty"`
	// AllowedTools restricts the tools offered to the model. Empty means
	// every registered tool; the policy still decides each call.
	AllowedTools []string `json:"allowed_tools,omitempty"`
	// Budget bounds the run. Zero fields take DefaultBudget's values.
	Budget Budget `json:"budget"`
	// ApprovalTimeout is how long a call waits for approval before it is
	// rejected automatically. Zero means DefaultApprovalTimeout.
	ApprovalTimeout time.Duration `json:"approval_timeout,omitempty"`
	// Continuation is set by the workflow itself when it continues as new
	// to keep its history small; product backends leave it nil.
	Continuation *Continuation `json:"continuation,omitempty"`
}

// Continuation is the state a run carries into its next Temporal run
// (continue-as-new). Runs continue only between turns, when no approval
// is pending, so nothing in flight crosses the boundary.
type Continuation struct {
	Step       int                `json:"step"`
	Usage      Usage              `json:"usage"`
	ToolCalls  map[string]int     `json:"tool_calls,omitempty"`
	Messages   []Message          `json:"messages"`
	Taint      []string           `json:"taint,omitempty"`
	Identities []ApprovalIdentity `json:"identities,omitempty"`
	BadTurns   int                `json:"bad_turns,omitempty"`
	// Segments counts the Temporal runs so far.
	Segments int `json:"segments"`
	// ConversationRef and ConversationLen: the first ConversationLen
	// messages are stored under ConversationRef (claim check).
	ConversationRef string `json:"conversation_ref,omitempty"`
	ConversationLen int    `json:"conversation_len,omitempty"`
}

// Budget bounds a run.
type Budget struct {
	// MaxSteps is the maximum number of model calls.
	MaxSteps int `json:"max_steps"`
	// MaxTokens is the maximum number of tokens (input + output) over all model calls.
	MaxTokens int `json:"max_tokens"`
	// MaxCostUSD is the most the run may spend on model calls, in US
	// dollars; zero means no money limit (tokens and steps still apply).
	MaxCostUSD float64 `json:"max_cost_usd,omitempty"`
}

// Defaults applied by RunRequest.WithDefaults.
var (
	DefaultBudget          = Budget{MaxSteps: 20, MaxTokens: 200_000}
	DefaultApprovalTimeout = 24 * time.Hour
)

// WithDefaults returns a copy of r with zero fields set to their defaults.
func (r RunRequest) WithDefaults() RunRequest {
	if r.Budget.MaxSteps <= 0 {
		r.Budget.MaxSteps = DefaultBudget.MaxSteps
	}
	if r.Budget.MaxTokens <= 0 {
		r.Budget.MaxTokens = DefaultBudget.MaxTokens
	}
	if r.ApprovalTimeout <= 0 {
		r.ApprovalTimeout = DefaultApprovalTimeout
	}
	return r
}

// Validate reports every missing or malformed field of r, naming each.
func (r RunRequest) Validate() error {
	var errs []error
	if strings.TrimSpace(r.Tenant) == "" {
		errs = append(errs, errors.New("tenant is required"))
	}
	if strings.TrimSpace(r.Requester) == "" {
		errs = append(errs, errors.New("requester is required"))
	}
	if strings.TrimSpace(r.Goal) == "" {
		errs = append(errs, errors.New("goal is required"))
	}
	if r.Budget.MaxSteps < 0 {
		errs = append(errs, fmt.Errorf("budget.max_steps must not be negative, got %d", r.Budget.MaxSteps))
	}
	if r.Budget.MaxCostUSD < 0 {
		errs = append(errs, fmt.Errorf("budget.max_cost_usd must not be negative, got %v", r.Budget.MaxCostUSD))
	}
	if r.Budget.MaxTokens < 0 {
		errs = append(errs, fmt.Errorf("budget.max_tokens must not be negative, got %d", r.Budget.MaxTokens))
	}
	if r.ApprovalTimeout < 0 {
		errs = append(errs, fmt.Errorf("approval_timeout must not be negative, got %s", r.ApprovalTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return nil
}

// RunStatus is where a run stands.
type RunStatus string

// Run statuses. The terminal ones are Completed, BudgetExhausted, Failed and Cancelled.
const (
	StatusRunning          RunStatus = "running"
	StatusAwaitingApproval RunStatus = "awaiting_approval"
	StatusCompleted        RunStatus = "completed"
	StatusBudgetExhausted  RunStatus = "budget_exhausted"
	StatusFailed           RunStatus = "failed"
	StatusCancelled        RunStatus = "cancelled"
)

// Terminal reports whether s is a final status.
func (s RunStatus) Terminal() bool {
	switch s {
	case StatusCompleted, StatusBudgetExhausted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Usage counts model tokens and their cost.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	// CostMicroUSD is the spend in millionths of a US dollar (integers, so
	// sums are exact to the cent and beyond).
	CostMicroUSD int64 `json:"cost_micro_usd"`
}

// CostUSD is the spend in US dollars.
func (u Usage) CostUSD() float64 { return float64(u.CostMicroUSD) / 1e6 }

// MicroUSD converts dollars to millionths of a dollar, rounding to the nearest.
func MicroUSD(usd float64) int64 { return int64(math.Round(usd * 1e6)) }

// Total is input plus output tokens.
func (u Usage) Total() int { return u.InputTokens + u.OutputTokens }

// Add returns the sum of u and v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens: u.InputTokens + v.InputTokens, OutputTokens: u.OutputTokens + v.OutputTokens,
		CostMicroUSD: u.CostMicroUSD + v.CostMicroUSD,
	}
}

// RunResult is the single output of the AgentRun workflow. A cancelled run
// ends with Temporal's cancellation instead; client.Client.Result turns that into a
// RunResult with StatusCancelled.
type RunResult struct {
	Status RunStatus `json:"status"`
	// Answer is the model's final answer (empty unless Completed).
	Answer string `json:"answer,omitempty"`
	// Steps is the number of model calls made.
	Steps int   `json:"steps"`
	Usage Usage `json:"usage"`
	// ToolCalls counts calls by Outcome ("executed", "denied", "rejected", "failed", ...).
	ToolCalls map[string]int `json:"tool_calls,omitempty"`
	// Error explains a Failed or BudgetExhausted status.
	Error string `json:"error,omitempty"`
}

// RunState is what the status query returns while a run is alive.
type RunState struct {
	Status           RunStatus      `json:"status"`
	Tenant           string         `json:"tenant"`
	Requester        string         `json:"requester"`
	Goal             string         `json:"goal"`
	Step             int            `json:"step"`
	Usage            Usage          `json:"usage"`
	Budget           Budget         `json:"budget"`
	PendingApprovals int            `json:"pending_approvals"`
	ToolCalls        map[string]int `json:"tool_calls,omitempty"`
	Answer           string         `json:"answer,omitempty"`
	Error            string         `json:"error,omitempty"`
}

// Outcome is how one tool call of a run ended, the key of
// RunResult.ToolCalls and RunState.ToolCalls.
type Outcome string

// The outcomes of a tool call, in the order Outcomes lists them.
const (
	OutcomeExecuted     Outcome = "executed"
	OutcomeDenied       Outcome = "denied"
	OutcomeInvalidArgs  Outcome = "invalid_args"
	OutcomeRejected     Outcome = "rejected"
	OutcomeExpired      Outcome = "expired"
	OutcomeFailed       Outcome = "failed"
	OutcomeUnknown      Outcome = "outcome_unknown"
	OutcomeTooManyCalls Outcome = "too_many_calls"
)

// Outcomes lists every Outcome, for displays that count them.
var Outcomes = []Outcome{
	OutcomeExecuted, OutcomeDenied, OutcomeInvalidArgs, OutcomeRejected,
	OutcomeExpired, OutcomeFailed, OutcomeUnknown, OutcomeTooManyCalls,
}
