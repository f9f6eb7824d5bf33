package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
)

// How runs started before the approval-record version decide: kept as it
// was so their histories replay. Do not change it; decideOnce
// (approval_record.go) is the current path.

// decideAsTyped is decide for runs started before approval-record:
// audit first, then state, so the approval is on record before the call
// can run. It records an edit as approved before the policy has seen it
// and compares names as typed; decideOnce replaces it.
func (r *run) decideAsTyped(ctx workflow.Context, d warden.ApprovalDecision, via string) (warden.ApprovalReceipt, error) {
	if err := r.check(ctx, d); err != nil {
		return warden.ApprovalReceipt{}, err
	}
	p := r.pending[d.RequestID]
	d.Approver = strings.TrimSpace(d.Approver)
	edited := len(d.Args) > 0
	ev := r.event(ctx, p.req.Step, p.req.CallID, warden.EventApprovalDecided, d.Approver+"/"+d.RequestID)
	ev.Actor = d.Approver
	ev.Tool = p.req.Tool
	ev.Args = p.req.Args
	ev.RequestID = p.req.RequestID
	ev.Decision = d.Decision
	ev.Risk = p.req.Risk
	ev.PolicyRevision = p.req.PolicyRevision
	ev.Message = fmt.Sprintf("%s via %s: %s", d.Decision, via, cmpStr(d.Reason, "no reason given"))
	if d.Signature != "" {
		ev.Message += " (signed)"
	}
	if edited {
		ev.Args = d.Args
		ev.Message += "; with edited args (the model proposed " + string(p.req.Args) + ")"
	}
	if err := r.record(ctx, ev); err != nil {
		return warden.ApprovalReceipt{}, fmt.Errorf("the decision could not be audited, so it was not applied; try again: %w", err)
	}
	// Another decision may have landed while the audit write ran.
	if err := r.check(ctx, d); err != nil {
		return r.receipt(p), err
	}
	id := warden.ApprovalIdentity{RequestID: d.RequestID, Approver: d.Approver, Decision: d.Decision, Via: via}
	if via == "update" { // GetCurrentUpdateInfo panics outside an update handler
		if info := workflow.GetCurrentUpdateInfo(ctx); info != nil {
			id.UpdateID = info.ID
		}
	}
	r.identities = append(r.identities, id)
	if edited {
		return r.applyEditAsTyped(ctx, p, d)
	}
	p.req.Approvals = append(p.req.Approvals, d)
	switch {
	case d.Decision == warden.ApprovalReject:
		p.outcome = warden.ApprovalStatusRejected
	case len(approvers(p)) >= p.req.Quorum:
		p.outcome = warden.ApprovalStatusApproved
	}
	r.publish(ctx)
	return r.receipt(p), nil
}

// applyEditAsTyped handles an approval that edits the call's arguments: the policy
// decides on the edited call again, and a deny or a stricter requirement
// wins. A deny refuses the edit (the request stays as it was); a call that
// still needs approval is rebound to a new request for the edited args, to
// which the editing approver's approval counts when the new decision
// permits them and needs no signature.
func (r *run) applyEditAsTyped(ctx workflow.Context, p *approval, d warden.ApprovalDecision) (warden.ApprovalReceipt, error) {
	cs := p.cs
	editedCall := warden.ToolCall{ID: cs.call.ID, Name: cs.call.Name, Args: d.Args}
	r.edits++
	auth, err := r.authorize(ctx, p.req.Step, editedCall, d.Approver, fmt.Sprintf("edit-%d", r.edits))
	if err != nil {
		return r.receipt(p), fmt.Errorf("the edited args could not be authorized (%s); the request stays pending", errorMessage(err))
	}
	switch auth.Verdict {
	case warden.VerdictAllow, warden.VerdictRequireApproval:
	default:
		return r.receipt(p), fmt.Errorf("%w: the policy refuses the edited args: %s; the request %s stays pending with the model's args",
			warden.ErrApprovalInvalid, auth.Message, p.req.RequestID)
	}
	if cs.proposed == nil {
		cs.proposed = cs.call.Args
	}
	idempotent := cs.auth.Idempotent
	cs.call, cs.auth, cs.editedBy, cs.taint = editedCall, auth, d.Approver, slices.Clone(r.taint)
	cs.auth.Idempotent = idempotent
	approval := d
	approval.Args = nil
	if auth.Verdict == warden.VerdictAllow {
		p.req.Approvals = append(p.req.Approvals, approval)
		p.outcome = warden.ApprovalStatusApproved
		r.publish(ctx)
		return r.receipt(p), nil
	}
	old := p.req.RequestID
	dec := auth.Decision
	p.req.RequestID, p.req.Args, p.req.ArgsHash = auth.RequestID, d.Args, auth.ArgsHash
	p.req.Risk, p.req.Reasons, p.req.Approvers = dec.Risk, dec.Reasons, dec.Approvers
	p.req.Quorum, p.req.PolicyRevision, p.req.Approvals = max(dec.Quorum, 1), dec.PolicyRevision, nil
	delete(r.pending, old)
	r.pending[p.req.RequestID] = p
	for i, id := range r.order {
		if id == old {
			r.order[i] = p.req.RequestID
		}
	}
	if govern.NamesAsTyped.Permits(dec.Approvers, d.Approver, r.req.Requester) && !dec.Approvers.RequireSignature {
		approval.RequestID = p.req.RequestID
		p.req.Approvals = []warden.ApprovalDecision{approval}
	}
	if len(approvers(p)) >= p.req.Quorum {
		p.outcome = warden.ApprovalStatusApproved
	}
	r.publish(ctx)
	return r.receipt(p), nil
}
