// The Authorize activity, which Plan shares: it decodes its input into a
// govern.Turn, lets internal/govern decide, and appends the events govern
// shapes.

package activities

import (
	"context"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
)

// VerdictInvalidArgs is the AuthorizeOutput.Verdict of a call refused
// before the policy is asked.
const VerdictInvalidArgs = govern.InvalidArgs

// AuthorizeInput is the input of Authorize.
type AuthorizeInput struct {
	Run  RunRef          `json:"run"`
	Step int             `json:"step"`
	Call warden.ToolCall `json:"call"`
	// RequestedAt is the workflow time of the request; an approval request
	// expires ApprovalTimeout later unless the policy sets its own expiry.
	RequestedAt     time.Time     `json:"requested_at"`
	ApprovalTimeout time.Duration `json:"approval_timeout"`
	// Actor asked for the call: "model", or the approver who edited its args.
	Actor string `json:"actor,omitempty"`
	// Revision distinguishes re-authorizations of the same call (an edit)
	// in the audit's event IDs; empty for the model's own request.
	Revision string `json:"revision,omitempty"`
	// Taint lists the sources of untrusted content the run has seen.
	Taint []string `json:"taint,omitempty"`
	// ArgsForm is how the run hashes arguments (warden.ArgsFormCanonical,
	// or 0 in runs started before it); with the canonical form, request
	// IDs are bound to the run's chain too (warden.RunApprovalRequestID).
	ArgsForm int `json:"args_form,omitempty"`
}

// AuthorizeOutput is the output of Authorize.
type AuthorizeOutput struct {
	// Verdict is the policy's verdict, or VerdictInvalidArgs.
	Verdict  govern.Verdict  `json:"verdict"`
	Decision warden.Decision `json:"decision"`
	ArgsHash string          `json:"args_hash,omitempty"`
	// RequestID is set when the call needs approval.
	RequestID  string `json:"request_id,omitempty"`
	Idempotent bool   `json:"idempotent"`
	// Message is what the model is told when the call does not run.
	Message string `json:"message,omitempty"`
	// UnknownTool is true when no tool is registered under the call's name
	// (the verdict is then deny). Outputs recorded before it existed say so
	// only by Message's "unknown tool" prefix.
	UnknownTool bool `json:"unknown_tool,omitempty"`
	// ExpiresAt is when the approval request expires (require_approval only).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Summary is the call's one-line summary for people, by the tool's
	// summary template (warden.ToolSpec.Summary) with the policy's
	// redacted keys hidden: the workflow shows it as the summary of the
	// activity that runs the call. Empty for calls refused before the
	// policy is asked, and in histories recorded before it existed.
	Summary string `json:"summary,omitempty"`
}

// Authorize validates a call's arguments and asks the policy about it,
// recording tool_requested, policy_decided and (when needed)
// approval_requested. Run it as a local activity: it makes no network call
// to the Temporal server.
func (a *Activities) Authorize(ctx context.Context, in AuthorizeInput) (AuthorizeOutput, error) {
	out, events := a.authorize(ctx, in)
	if err := a.Audit.Append(ctx, events...); err != nil {
		return AuthorizeOutput{}, auditFailed("authorize "+in.Call.Name, err)
	}
	return out, nil
}

// turn is the decision context of in: what govern.Authorize and, for the
// same call later, govern.Enforce decide on.
func (a *Activities) turn(run RunRef, step int, taint []string, form int) govern.Turn {
	return govern.Turn{Run: run, Step: step, Taint: taint, SandboxMode: warden.SandboxMode(a.SandboxMode), ArgsForm: form}
}

// authorize decides one call (govern.Authorize) and returns the audit
// events that record it; the caller appends them before acting on out.
func (a *Activities) authorize(ctx context.Context, in AuthorizeInput) (AuthorizeOutput, []warden.AuditEvent) {
	turn := a.turn(in.Run, in.Step, in.Taint, in.ArgsForm)
	z := govern.Authorize(ctx, a.Policy, a.Tools, in.Call, turn)
	req := govern.Request{Actor: in.Actor, Revision: in.Revision, RequestedAt: in.RequestedAt, ApprovalTimeout: in.ApprovalTimeout}
	out := AuthorizeOutput{
		Verdict: z.Verdict, Decision: z.Decision, ArgsHash: z.ArgsHash, RequestID: z.RequestID,
		Idempotent: z.Idempotent, Message: z.Message, UnknownTool: !z.Known,
	}
	if z.Verdict == govern.RequireApproval {
		out.ExpiresAt = govern.ExpiresAt(z.Decision, in.RequestedAt, in.ApprovalTimeout)
	}
	if z.Verdict != govern.InvalidArgs {
		spec, _ := a.Tools.Spec(in.Call.Name)
		out.Summary = spec.Summarize(in.Call, z.Decision.Obligations.RedactArgs)
	}
	return out, z.Events(turn, in.Call, req, time.Now())
}
