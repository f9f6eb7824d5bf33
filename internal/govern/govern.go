// Package govern decides tool calls: the one place where a call's policy
// input is built, its approval request ID derived, approval evidence and
// approvers judged, and the audit events of a decision shaped.
//
// It is pure Go: no Temporal, no I/O, no clock. Authorize (when the model
// asks for a call) and Enforce (just before the call runs) take the same
// Turn value, so the policy sees the same input at both points by
// construction; the only difference Enforce adds is the approval
// evidence. The workflow freezes a Turn per decision and hands it to both.
package govern

import (
	"context"
	"encoding/json"

	"github.com/wardenhq/warden"
)

// Run identifies the run a decision is for. Its JSON is activities.RunRef's
// (recorded in workflow histories): field names are frozen.
type Run struct {
	Tenant     string `json:"tenant"`
	Requester  string `json:"requester"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// ChainID is the first run ID of the run's chain of continue-as-new
	// segments (workflow.Info.FirstRunID). Empty in inputs recorded before
	// it existed: RunID is used.
	ChainID string `json:"chain_id,omitempty"`
}

// Chain is the run's chain ID, or its run ID in inputs recorded before
// chains were.
func (r Run) Chain() string {
	if r.ChainID != "" {
		return r.ChainID
	}
	return r.RunID
}

// Turn is everything a decision depends on besides the call itself.
type Turn struct {
	Run  Run
	Step int
	// Taint lists the sources of untrusted content the run had seen when
	// the decision was taken.
	Taint []string
	// SandboxMode is the isolation tools run in, as the worker reports it.
	SandboxMode warden.SandboxMode
	// ArgsForm is how the run hashes arguments (warden.ArgsFormCanonical,
	// or warden.ArgsFormLegacy in runs started before it).
	ArgsForm int
}

// Policy decides one call. *policies.Engine implements it; on error the
// call is refused.
type Policy interface {
	Decide(ctx context.Context, in warden.PolicyInput) (warden.Decision, error)
}

// Tools knows the registered tools.
type Tools interface {
	Spec(name string) (warden.ToolSpec, bool)
	Specs(allowed []string) []warden.ToolSpec
	// Validate checks args against the tool's JSON Schema; the error text is
	// written for the model to act on.
	Validate(name string, args json.RawMessage) error
}

// Input is the policy input for call in turn: the only place it is built.
func Input(call warden.ToolCall, spec warden.ToolSpec, known bool, turn Turn) warden.PolicyInput {
	args := call.Args
	if !json.Valid(args) {
		args = json.RawMessage("null")
	}
	return warden.PolicyInput{
		Tenant:     turn.Run.Tenant,
		Requester:  turn.Run.Requester,
		WorkflowID: turn.Run.WorkflowID,
		Step:       turn.Step,
		Tool: warden.PolicyTool{
			Name: call.Name, Known: known, Risk: spec.Risk,
			Idempotent: spec.Idempotent, Effects: spec.Effects,
		},
		Args:        args,
		SandboxMode: turn.SandboxMode,
		Taint:       turn.Taint,
	}
}

// RequestID is the approval request ID of call in turn, for the policy
// revision that asked for approval: bound to the run's chain, the step,
// the call, the tool and its arguments in the run's form.
func RequestID(turn Turn, call warden.ToolCall, argsHash, policyRevision string) string {
	if turn.ArgsForm == warden.ArgsFormLegacy {
		return warden.ApprovalRequestID(turn.Run.WorkflowID, turn.Step, call.ID, call.Name, argsHash, policyRevision)
	}
	return warden.RunApprovalRequestID(turn.Run.Chain(), turn.Run.WorkflowID, turn.Step, call.ID, call.Name, argsHash, policyRevision)
}
