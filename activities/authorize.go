// The Authorize activity and the decision logic Plan shares with it:
// argument validation, the policy question, the approval request ID and
// expiry, and the audit events that record the decision.

package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// Authorization outcomes (AuthorizeOutput.Verdict): the policy verdicts plus
// "invalid_args" for calls refused before the policy is asked.
const VerdictInvalidArgs = "invalid_args"

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
	// Verdict is warden.VerdictAllow, VerdictDeny, VerdictRequireApproval or VerdictInvalidArgs.
	Verdict  string          `json:"verdict"`
	Decision warden.Decision `json:"decision"`
	ArgsHash string          `json:"args_hash,omitempty"`
	// RequestID is set when the call needs approval.
	RequestID  string `json:"request_id,omitempty"`
	Idempotent bool   `json:"idempotent"`
	// Message is what the model is told when the call does not run.
	Message string `json:"message,omitempty"`
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
		return AuthorizeOutput{}, fmt.Errorf("authorize %s: audit: %w", in.Call.Name, err)
	}
	return out, nil
}

// authorize decides one call and returns the audit events that record it
// (tool_requested, then policy_decided and approval_requested when the
// arguments are valid); the caller appends them before acting on out.
func (a *Activities) authorize(ctx context.Context, in AuthorizeInput) (AuthorizeOutput, []warden.AuditEvent) {
	call := in.Call
	spec, known := a.Tools.Spec(call.Name)
	requested := a.event(in.Run, in.Step, call.ID, warden.EventToolRequested, in.Revision)
	requested.Actor = cmp.Or(in.Actor, "model")
	requested.Tool = call.Name
	requested.Args = jsonOrString(call.Args)

	out := AuthorizeOutput{Idempotent: spec.Idempotent}
	argsHash, hashErr := warden.ArgsHashForm(call.Args, in.ArgsForm)
	if known {
		verr := hashErr
		if verr == nil {
			verr = a.Tools.Validate(call.Name, call.Args)
		}
		if verr != nil {
			out.Verdict = VerdictInvalidArgs
			out.Message = fmt.Sprintf("invalid arguments for %s: %v. Fix the arguments and call the tool again.", call.Name, verr)
			requested.Decision = VerdictInvalidArgs
			requested.Message = out.Message
			return out, []warden.AuditEvent{requested}
		}
	}
	out.ArgsHash = argsHash

	input := a.policyInput(in.Run, in.Step, call, spec, known)
	input.Taint = in.Taint
	dec, err := a.Policy.Decide(ctx, input)
	if err != nil {
		dec.Allow = false
		dec.Reasons = append(dec.Reasons, "policy evaluation failed: "+err.Error())
	}
	out.Decision = dec
	out.Verdict = dec.Verdict()
	out.Summary = spec.Summarize(call, dec.Obligations.RedactArgs)

	decided := a.event(in.Run, in.Step, call.ID, warden.EventPolicyDecided, in.Revision)
	decided.Actor = "policy"
	decided.Tool = call.Name
	decided.Decision = out.Verdict
	decided.Risk = dec.Risk
	decided.Reasons = dec.Reasons
	decided.PolicyRevision = dec.PolicyRevision
	events := []warden.AuditEvent{requested, decided}

	switch out.Verdict {
	case warden.VerdictDeny:
		out.Message = fmt.Sprintf("denied by policy: %s", strings.Join(dec.Reasons, "; "))
		if !known {
			names := []string{}
			for _, s := range a.Tools.Specs(nil) {
				names = append(names, s.Name)
			}
			out.Message = fmt.Sprintf("unknown tool %q; available tools: %s. %s", call.Name, strings.Join(names, ", "), out.Message)
		}
	case warden.VerdictRequireApproval:
		out.RequestID = requestID(in.Run, in.ArgsForm, in.Step, call, argsHash, dec.PolicyRevision)
		// The policy sets the expiry; the run's approval timeout caps it.
		timeout := in.ApprovalTimeout
		if secs := dec.Obligations.ApprovalTimeoutSeconds; secs > 0 && (timeout <= 0 || time.Duration(secs)*time.Second < timeout) {
			timeout = time.Duration(secs) * time.Second
		}
		out.ExpiresAt = in.RequestedAt.Add(timeout)
		req := a.event(in.Run, in.Step, call.ID, warden.EventApprovalRequested, in.Revision)
		req.Actor = "policy"
		req.Tool = call.Name
		req.Args = call.Args
		req.Decision = out.Verdict
		req.Risk = dec.Risk
		req.Reasons = dec.Reasons
		req.PolicyRevision = dec.PolicyRevision
		req.RequestID = out.RequestID
		req.Message = fmt.Sprintf("awaiting %d approval(s) from %s until %s",
			max(dec.Quorum, 1), strings.Join(dec.Approvers.Users, ", "), out.ExpiresAt.UTC().Format(time.RFC3339))
		events = append(events, req)
	}
	return out, events
}

// requestID is the approval request ID of call in the run's argument form.
func requestID(run RunRef, form, step int, call warden.ToolCall, argsHash, policyRevision string) string {
	if form == warden.ArgsFormLegacy {
		return warden.ApprovalRequestID(run.WorkflowID, step, call.ID, call.Name, argsHash, policyRevision)
	}
	return warden.RunApprovalRequestID(cmp.Or(run.ChainID, run.RunID), run.WorkflowID, step, call.ID, call.Name, argsHash, policyRevision)
}

// jsonOrString keeps valid JSON as is and stores anything else as a JSON string.
func jsonOrString(raw json.RawMessage) json.RawMessage {
	if json.Valid(raw) {
		return raw
	}
	b, _ := json.Marshal(string(raw))
	return b
}
