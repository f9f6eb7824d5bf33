package govern

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// Event is the skeleton of an audit event about one call of run at step:
// its ID (stable across retries: the audit de-duplicates by it), the run's
// names and the time.
func Event(run Run, step int, callID string, typ warden.EventType, discriminator string, now time.Time) warden.AuditEvent {
	return warden.AuditEvent{
		ID:         warden.EventID(run.WorkflowID, run.RunID, step, callID, typ, discriminator),
		Type:       typ,
		Tenant:     run.Tenant,
		WorkflowID: run.WorkflowID,
		RunID:      run.RunID,
		Step:       step,
		CallID:     callID,
		OccurredAt: now.UTC(),
	}
}

// Request says who asked for a decision and when.
type Request struct {
	// Actor asked for the call: "model" (the default), or the approver who
	// edited its arguments.
	Actor string
	// Revision distinguishes re-authorizations of the same call (an edit,
	// a grown taint) in the events' IDs; empty for the model's own request.
	Revision string
	// RequestedAt is the workflow time of the request, and ApprovalTimeout
	// the run's cap on how long an approval request stays open.
	RequestedAt     time.Time
	ApprovalTimeout time.Duration
}

// Events are the audit events that record z: tool_requested, then (when
// the arguments were valid) policy_decided and, when approval is needed,
// approval_requested. now stamps them.
func (z Authorization) Events(turn Turn, call warden.ToolCall, req Request, now time.Time) []warden.AuditEvent {
	requested := Event(turn.Run, turn.Step, call.ID, warden.EventToolRequested, req.Revision, now)
	requested.Actor = cmp.Or(req.Actor, "model")
	requested.Tool = call.Name
	requested.Args = jsonOrString(call.Args)
	if z.Verdict == InvalidArgs {
		requested.Decision = string(InvalidArgs)
		requested.Message = z.Message
		return []warden.AuditEvent{requested}
	}
	dec := z.Decision
	decided := Event(turn.Run, turn.Step, call.ID, warden.EventPolicyDecided, req.Revision, now)
	decided.Actor = "policy"
	decided.Tool = call.Name
	decided.Decision = string(z.Verdict)
	decided.Risk = dec.Risk
	decided.Reasons = dec.Reasons
	decided.PolicyRevision = dec.PolicyRevision
	events := []warden.AuditEvent{requested, decided}
	if z.Verdict != RequireApproval {
		return events
	}
	approval := Event(turn.Run, turn.Step, call.ID, warden.EventApprovalRequested, req.Revision, now)
	approval.Actor = "policy"
	approval.Tool = call.Name
	approval.Args = call.Args
	approval.Decision = string(z.Verdict)
	approval.Risk = dec.Risk
	approval.Reasons = dec.Reasons
	approval.PolicyRevision = dec.PolicyRevision
	approval.RequestID = z.RequestID
	approval.Message = fmt.Sprintf("awaiting %d approval(s) from %s until %s",
		max(dec.Quorum, 1), strings.Join(dec.Approvers.Users, ", "),
		ExpiresAt(dec, req.RequestedAt, req.ApprovalTimeout).UTC().Format(time.RFC3339))
	return append(events, approval)
}

// RefusalEvent records that Enforce refused call (tool_failed, "refused").
func RefusalEvent(turn Turn, call warden.ToolCall, dec warden.Decision, cause error, now time.Time) warden.AuditEvent {
	ev := Event(turn.Run, turn.Step, call.ID, warden.EventToolFailed, "refused", now)
	ev.Actor = "policy"
	ev.Tool = call.Name
	ev.Args = call.Args
	ev.Decision = warden.VerdictDeny
	ev.Risk = dec.Risk
	ev.Reasons = dec.Reasons
	ev.PolicyRevision = dec.PolicyRevision
	ev.Message = "refused at execution: " + cause.Error()
	return ev
}

// jsonOrString keeps raw as is when it is JSON, else stores it as a JSON
// string (a model's malformed arguments are recorded, not lost).
func jsonOrString(raw json.RawMessage) json.RawMessage {
	if json.Valid(raw) {
		return raw
	}
	b, _ := json.Marshal(string(raw))
	return b
}
