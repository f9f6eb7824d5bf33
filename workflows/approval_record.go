package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
)

// nameForm is how this run compares approver names.
func (r *run) nameForm() govern.NameForm {
	if r.approvalRecord {
		return govern.NamesAsIdentities
	}
	return govern.NamesAsTyped
}

// decideOnce applies a decision, recording it once and as it was applied.
// Decisions are applied one at a time: one arriving while another is
// being recorded waits for it, then is checked against the request as it
// stands (so nothing recorded as "approve" is then found already decided
// or expired). Whatever it refuses after the validator let it through is
// audited as approval_refused.
func (r *run) decideOnce(ctx workflow.Context, d warden.ApprovalDecision, via string) (warden.ApprovalReceipt, error) {
	if err := workflow.Await(ctx, func() bool { return !r.deciding }); err != nil {
		return warden.ApprovalReceipt{}, err
	}
	r.deciding = true
	defer func() { r.deciding = false }()
	if err := r.check(ctx, d); err != nil {
		r.refuse(ctx, d, via, err)
		var receipt warden.ApprovalReceipt
		if p, ok := r.pending[d.RequestID]; ok {
			receipt = r.receipt(p)
		}
		return receipt, err
	}
	p := r.pending[d.RequestID]
	d.Approver, _ = r.nameForm().Resolve(p.req.Approvers, d.Approver, r.req.Requester) // check accepted it
	if len(d.Args) > 0 {
		return r.editOnce(ctx, p, d, via)
	}
	ev := r.decisionEvent(ctx, p, d, via)
	if err := r.record(ctx, ev); err != nil {
		return r.receipt(p), fmt.Errorf("the decision could not be audited, so it was not applied; try again: %w", err)
	}
	r.noteIdentity(ctx, d, via)
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

// editOnce applies an approval with edited arguments. The policy decides
// the edited call first; only then is anything recorded. A deny, or an edit
// no approver could clear, is audited as approval_refused and leaves the
// request as it was. Otherwise the call is rebound to a request for the
// edited arguments that needs the stricter of the two bars
// (govern.Stricter), to which the editor's approval counts when that bar
// permits them (govern.CountsForEdit).
func (r *run) editOnce(ctx workflow.Context, p *approval, d warden.ApprovalDecision, via string) (warden.ApprovalReceipt, error) {
	cs := p.cs
	editedCall := warden.ToolCall{ID: cs.call.ID, Name: cs.call.Name, Args: d.Args}
	r.edits++
	auth, err := r.authorize(ctx, p.req.Step, editedCall, d.Approver, fmt.Sprintf("edit-%d", r.edits))
	if err != nil {
		return r.receipt(p), fmt.Errorf("the edited args could not be authorized (%s); the request stays pending", errorMessage(err))
	}
	var bar govern.Bar
	switch auth.Verdict {
	case warden.VerdictAllow, warden.VerdictRequireApproval:
		bar, err = govern.Stricter(govern.BarOf(p.req), auth.Decision, r.req.Requester)
	default:
		err = fmt.Errorf("the policy refuses the edited args: %s", auth.Message)
	}
	if err != nil {
		cause := fmt.Errorf("%w: %v; request %s stays pending with the model's args", warden.ErrApprovalInvalid, err, p.req.RequestID)
		r.refuse(ctx, d, via, cause)
		return r.receipt(p), cause
	}
	counts := govern.CountsForEdit(p.req, bar, d)
	dec := auth.Decision
	newID := auth.RequestID
	if newID == "" { // allowed outright: still a request of its own for the edited args
		newID = govern.RequestID(govern.Turn{Run: r.ref, Step: p.req.Step, ArgsForm: r.argsForm()}, editedCall, auth.ArgsHash, dec.PolicyRevision)
	}
	ev := r.decisionEvent(ctx, p, d, via)
	ev.Risk = bar.Risk
	ev.PolicyRevision = dec.PolicyRevision
	ev.Message += fmt.Sprintf("; the edited call is request %s and needs %d approval(s) at %s risk%s", newID, bar.Quorum, bar.Risk,
		map[bool]string{true: ", signed", false: ""}[bar.Approvers.RequireSignature])
	if counts {
		ev.Message += "; this approval counts toward it"
	} else {
		ev.Message += "; this approval does not count toward it (the stricter bar needs another approver or a signature over the edited args)"
	}
	if err := r.record(ctx, ev); err != nil {
		return r.receipt(p), fmt.Errorf("the decision could not be audited, so it was not applied; try again: %w", err)
	}
	r.noteIdentity(ctx, d, via)
	if cs.proposed == nil {
		cs.proposed = cs.call.Args
	}
	idempotent := cs.auth.Idempotent
	cs.call, cs.auth, cs.editedBy, cs.taint = editedCall, auth, d.Approver, slices.Clone(r.taint)
	cs.auth.Idempotent = idempotent
	cs.auth.RequestID = newID
	old := p.req.RequestID
	p.req.RequestID, p.req.Args, p.req.ArgsHash = newID, d.Args, auth.ArgsHash
	p.req.Risk, p.req.Quorum, p.req.Approvers = bar.Risk, bar.Quorum, bar.Approvers
	p.req.PolicyRevision, p.req.Approvals = dec.PolicyRevision, nil
	if len(dec.Reasons) > 0 {
		p.req.Reasons = dec.Reasons
	}
	delete(r.pending, old)
	r.pending[newID] = p
	for i, id := range r.order {
		if id == old {
			r.order[i] = newID
		}
	}
	if counts {
		approval := d
		approval.Args, approval.RequestID = nil, newID
		p.req.Approvals = []warden.ApprovalDecision{approval}
	}
	if len(approvers(p)) >= p.req.Quorum {
		p.outcome = warden.ApprovalStatusApproved
	}
	r.publish(ctx)
	return r.receipt(p), nil
}

// decisionEvent is the approval_decided row of d on p. Its ID carries the
// run's decision sequence, so no later decision is taken for a repeat of
// an earlier one.
func (r *run) decisionEvent(ctx workflow.Context, p *approval, d warden.ApprovalDecision, via string) warden.AuditEvent {
	r.decisions++
	ev := r.event(ctx, p.req.Step, p.req.CallID, warden.EventApprovalDecided, fmt.Sprintf("%s/%s/%d", d.Approver, d.RequestID, r.decisions))
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
	if len(d.Args) > 0 {
		ev.Args = d.Args
		ev.Message += "; with edited args (the model proposed " + string(p.req.Args) + ")"
	}
	return ev
}

// noteIdentity remembers how an applied decision arrived, for the run's
// approval_identities row.
func (r *run) noteIdentity(ctx workflow.Context, d warden.ApprovalDecision, via string) {
	id := warden.ApprovalIdentity{RequestID: d.RequestID, Approver: d.Approver, Decision: d.Decision, Via: via}
	if via == "update" { // GetCurrentUpdateInfo panics outside an update handler
		if info := workflow.GetCurrentUpdateInfo(ctx); info != nil {
			id.UpdateID = info.ID
		}
	}
	r.identities = append(r.identities, id)
}
