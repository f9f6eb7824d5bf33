// Activities that write audit rows for the workflow (Record,
// RecordIdentities, Escalate), and the audit helpers every stage uses:
// the event skeleton and the audit write error.

package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
)

// EscalateInput is the input of Escalate.
type EscalateInput struct {
	Run     RunRef                 `json:"run"`
	Request warden.ApprovalRequest `json:"request"`
}

// Escalate tells the configured escalation channel that an approval request
// is still pending, and records approval_escalated. Without a channel it
// records that nobody could be told.
func (a *Activities) Escalate(ctx context.Context, in EscalateInput) error {
	p := in.Request
	ev := a.event(in.Run, p.Step, p.CallID, warden.EventApprovalEscalated, p.RequestID)
	ev.Actor = "system"
	ev.Tool = p.Tool
	ev.RequestID = p.RequestID
	ev.Risk = p.Risk
	ev.Message = fmt.Sprintf("approval still pending; expires %s; approvers: %s", p.ExpiresAt.UTC().Format(time.RFC3339), strings.Join(p.Approvers.Users, ", "))
	if a.Escalations == nil {
		ev.Message += " (no escalation channel configured)"
	} else if err := a.Escalations.Escalate(ctx, in.Run.Tenant, in.Run.WorkflowID, p); err != nil {
		return fmt.Errorf("escalate %s: %w", p.RequestID, err)
	}
	if err := a.Audit.Append(ctx, ev); err != nil {
		return auditFailed("escalate "+p.RequestID, err)
	}
	return nil
}

// IdentitiesInput is the input of RecordIdentities.
type IdentitiesInput struct {
	Run        RunRef                    `json:"run"`
	Step       int                       `json:"step"`
	Identities []warden.ApprovalIdentity `json:"identities"`
}

// RecordIdentities looks up, in the workflow's history, the transport
// identity of every approval the run received, and records them in one
// approval_identities event. Run it as a local activity when the run ends:
// by then every approval's history event has been written.
func (a *Activities) RecordIdentities(ctx context.Context, in IdentitiesInput) error {
	ids := make([]warden.ApprovalIdentity, len(in.Identities))
	copy(ids, in.Identities)
	for i := range ids {
		ids[i].TransportIdentity = "unknown"
	}
	msg := "transport identities of the run's approvals"
	if a.History == nil {
		msg += " (no history reader configured)"
	} else if updates, signals, err := a.History.TransportIdentities(ctx, in.Run.WorkflowID, in.Run.RunID); err != nil {
		msg += " (history unreadable: " + err.Error() + ")"
	} else {
		used := make([]bool, len(signals))
		for i, id := range ids {
			switch id.Via {
			case "update":
				if v, ok := updates[id.UpdateID]; ok {
					ids[i].TransportIdentity = v
				}
			case "signal":
				for j, s := range signals {
					if !used[j] && s.RequestID == id.RequestID && s.Approver == id.Approver {
						ids[i].TransportIdentity, used[j] = s.Identity, true
						break
					}
				}
			}
		}
	}
	ev := a.event(in.Run, in.Step, "", warden.EventApprovalIdentities, "")
	ev.Actor = "system"
	ev.Result, _ = json.Marshal(ids)
	ev.Message = msg
	if err := a.Audit.Append(ctx, ev); err != nil {
		return auditError("record identities", err)
	}
	return nil
}

// RecordInput is the input of Record.
type RecordInput struct {
	Events []warden.AuditEvent `json:"events"`
}

// Record appends audit events the workflow produces (run started, approval
// decided, outcome unknown, run finished). Run it as a local activity.
func (a *Activities) Record(ctx context.Context, in RecordInput) error {
	if err := a.Audit.Append(ctx, in.Events...); err != nil {
		return auditError("record", err)
	}
	return nil
}

// auditFailed is the error of an activity whose audit write failed:
// typed warden.ErrTypeAudit and retried (the store may come back), so that
// no caller mistakes an outage for a refusal.
func auditFailed(what string, err error) error {
	return temporal.NewApplicationErrorWithCause(what+": audit: "+err.Error(), warden.ErrTypeAudit, err)
}

// auditError wraps a failed audit write for the workflow: an invalid event
// is not retried (writing it again cannot succeed); anything else is, until
// the store takes it.
func auditError(what string, err error) error {
	if errors.Is(err, warden.ErrInvalidAuditEvent) {
		return temporal.NewNonRetryableApplicationError(what+": "+err.Error(), warden.ErrTypeInvalidAudit, err)
	}
	return auditFailed(what, err)
}

func (a *Activities) event(run RunRef, step int, callID string, typ warden.EventType, discriminator string) warden.AuditEvent {
	return govern.Event(run, step, callID, typ, discriminator, time.Now())
}
