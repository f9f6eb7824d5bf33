package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/internal/govern"
)

// registerHandlers installs the queries, the approve Update (with its
// validator) and the approve Signal.
func (r *run) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, warden.QueryStatus,
		func() (warden.RunState, error) {
			s := r.state
			s.PendingApprovals = len(r.order)
			return s, nil
		},
		workflow.QueryHandlerOptions{Description: "Where the run stands: status, step, token usage, budget, pending approvals, tool call counts."},
	); err != nil {
		return err
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, warden.QueryPendingApprovals,
		func() ([]warden.ApprovalRequest, error) { return r.pendingRequests(), nil },
		workflow.QueryHandlerOptions{Description: "Tool calls waiting for approval: request_id, tool, arguments, risk, reasons, who may approve, expiry."},
	); err != nil {
		return err
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, warden.QueryTranscript,
		func() ([]warden.Message, error) { return r.transcript(), nil },
		workflow.QueryHandlerOptions{Description: "The conversation so far: goal, model messages, tool calls (arguments redacted where the policy says) and tool results."},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, warden.UpdateApprove,
		func(ctx workflow.Context, d warden.ApprovalDecision) (warden.ApprovalReceipt, error) {
			receipt, err := r.decide(ctx, d, "update")
			return receipt, refusal(err)
		},
		workflow.UpdateHandlerOptions{
			Validator: func(ctx workflow.Context, d warden.ApprovalDecision) error { return refusal(r.check(ctx, d)) },
			Description: `Approve or reject a pending tool call. Payload: {"request_id": "apr_...", "decision": "approve" | "reject", ` +
				`"approver": "<your name>", "reason": "..."}; optional "args": {...} to approve edited arguments (the policy decides again), ` +
				`"signature" when the policy demands signed approvals. The request_id is in the run's details and the pending_approvals query.`,
		},
	); err != nil {
		return err
	}
	ch := workflow.GetSignalChannelWithOptions(ctx, warden.SignalApprove, workflow.SignalChannelOptions{
		Description: `Same as the approve Update, for deployments without Updates: {"request_id", "decision": "approve" | "reject", "approver", "reason"}. ` +
			`Invalid signals are refused and audited.`,
	})
	r.signals = ch
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var d warden.ApprovalDecision
			if more := ch.Receive(ctx, &d); !more {
				return
			}
			if err := r.check(ctx, d); err != nil {
				r.refuseSignal(ctx, d, err)
				continue
			}
			if _, err := r.decide(ctx, d, "signal"); err != nil {
				r.refuseSignal(ctx, d, err)
			}
		}
	})
	return nil
}

// refusal types a refused decision (one wrapping warden.ErrApprovalInvalid)
// as warden.ErrTypeApprovalRefused for the Update's caller, so a client
// tells "the workflow said no" from anything else that failed (an audit
// outage during an edit's re-authorisation is not a refusal).
func refusal(err error) error {
	if err != nil && errors.Is(err, warden.ErrApprovalInvalid) {
		return temporal.NewNonRetryableApplicationError(err.Error(), warden.ErrTypeApprovalRefused, nil)
	}
	return err
}

// openApproval registers a pending approval request for a call.
func (r *run) openApproval(ctx workflow.Context, step int, cs *callState) *approval {
	dec := cs.auth.Decision
	now := workflow.Now(ctx).UTC()
	p := &approval{cs: cs, req: warden.ApprovalRequest{
		RequestID:      cs.auth.RequestID,
		Step:           step,
		CallID:         cs.call.ID,
		Tool:           cs.call.Name,
		Args:           cs.call.Args,
		ArgsHash:       cs.auth.ArgsHash,
		Risk:           dec.Risk,
		Reasons:        dec.Reasons,
		Approvers:      dec.Approvers,
		Quorum:         max(dec.Quorum, 1),
		Requester:      r.req.Requester,
		PolicyRevision: dec.PolicyRevision,
		RequestedAt:    now,
		ExpiresAt:      cs.auth.ExpiresAt.UTC(),
		ArgsForm:       r.argsForm(),
	}}
	if secs := dec.Obligations.EscalateAfterSeconds; secs > 0 {
		p.escalateAt = now.Add(time.Duration(secs) * time.Second)
	}
	r.pending[p.req.RequestID] = p
	r.order = append(r.order, p.req.RequestID)
	return p
}

// watch escalates p when the policy asks and it is still pending, and
// rejects it when it expires. It runs as a workflow coroutine per request.
func (r *run) watch(ctx workflow.Context, p *approval) {
	decided := func() bool { return p.outcome != "" }
	if !p.escalateAt.IsZero() && p.escalateAt.Before(p.req.ExpiresAt) {
		ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      p.escalateAt.Sub(workflow.Now(ctx)),
			TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("escalate approval of %s (%s)", p.req.Tool, p.req.RequestID)},
		}, decided)
		if err != nil {
			return
		}
		if !ok && !decided() {
			escCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: 30 * time.Second,
				RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
				Summary:             "escalate: " + p.req.Tool + " still awaits approval",
			})
			if err := workflow.ExecuteActivity(escCtx, a.Escalate, activities.EscalateInput{Run: r.ref, Request: r.view(p)}).Get(ctx, nil); err != nil {
				workflow.GetLogger(ctx).Warn("escalation failed", "request_id", p.req.RequestID, "error", err)
			}
		}
	}
	if wait := p.req.ExpiresAt.Sub(workflow.Now(ctx)); wait > 0 {
		ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      wait,
			TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("approval of %s expires (%s)", p.req.Tool, p.req.RequestID)},
		}, decided)
		if err != nil || ok {
			return
		}
	}
	if decided() {
		return
	}
	p.outcome = warden.ApprovalStatusExpired
	r.publishMemo(ctx, r.pendingRequests())
	ev := r.event(ctx, p.req.Step, p.req.CallID, warden.EventApprovalDecided, "expired")
	ev.Actor = "system"
	ev.Tool = p.req.Tool
	ev.RequestID = p.req.RequestID
	ev.Decision = warden.ApprovalReject
	ev.Risk = p.req.Risk
	ev.Message = fmt.Sprintf("approval expired at %s with %d of %d approvals; rejected automatically",
		p.req.ExpiresAt.Format(time.RFC3339), len(approvers(p)), p.req.Quorum)
	if err := r.record(ctx, ev); err != nil {
		workflow.GetLogger(ctx).Error("record approval expiry", "error", err)
	}
}

// closeApprovals removes decided requests from the pending list.
func (r *run) closeApprovals(done []*callState) {
	for _, cs := range done {
		delete(r.pending, cs.approval.req.RequestID)
	}
	kept := r.order[:0]
	for _, id := range r.order {
		if _, ok := r.pending[id]; ok {
			kept = append(kept, id)
		}
	}
	r.order = kept
}

// check is the approve Update's validator: it refuses, without touching
// state or history, anything that cannot be applied.
func (r *run) check(ctx workflow.Context, d warden.ApprovalDecision) error {
	p, ok := r.pending[d.RequestID]
	if !ok {
		ids := strings.Join(r.order, ", ")
		if ids == "" {
			ids = "none"
		}
		return fmt.Errorf("%w: no pending approval request %q (pending: %s)", warden.ErrApprovalInvalid, d.RequestID, ids)
	}
	if p.outcome != "" {
		return fmt.Errorf("%w: request %s is already %s", warden.ErrApprovalInvalid, d.RequestID, p.outcome)
	}
	return govern.CheckDecision(p.req, d, workflow.Now(ctx))
}

// decide applies a valid decision: audit first, then state, so the
// approval is on record before the call can run.
func (r *run) decide(ctx workflow.Context, d warden.ApprovalDecision, via string) (warden.ApprovalReceipt, error) {
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
		return r.applyEdit(ctx, p, d)
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

// applyEdit handles an approval that edits the call's arguments: the policy
// decides on the edited call again, and a deny or a stricter requirement
// wins. A deny refuses the edit (the request stays as it was); a call that
// still needs approval is rebound to a new request for the edited args, to
// which the editing approver's approval counts when the new decision
// permits them and needs no signature.
func (r *run) applyEdit(ctx workflow.Context, p *approval, d warden.ApprovalDecision) (warden.ApprovalReceipt, error) {
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
	if govern.Permits(dec.Approvers, d.Approver, r.req.Requester) && !dec.Approvers.RequireSignature {
		approval.RequestID = p.req.RequestID
		p.req.Approvals = []warden.ApprovalDecision{approval}
	}
	if len(approvers(p)) >= p.req.Quorum {
		p.outcome = warden.ApprovalStatusApproved
	}
	r.publish(ctx)
	return r.receipt(p), nil
}

func (r *run) receipt(p *approval) warden.ApprovalReceipt {
	return warden.ApprovalReceipt{
		RequestID: p.req.RequestID, Status: cmpStr(p.outcome, warden.ApprovalStatusPending),
		Approvals: len(approvers(p)), Quorum: p.req.Quorum,
	}
}

// refuseSignal audits an approval Signal that could not be applied.
func (r *run) refuseSignal(ctx workflow.Context, d warden.ApprovalDecision, cause error) {
	r.refusals++
	workflow.GetLogger(ctx).Warn("approval signal refused", "request_id", d.RequestID, "approver", d.Approver, "error", cause)
	ev := r.event(ctx, r.state.Step, "", warden.EventApprovalRefused, fmt.Sprint(r.refusals))
	ev.Actor = cmpStr(strings.TrimSpace(d.Approver), "unknown")
	ev.RequestID = d.RequestID
	ev.Decision = d.Decision
	ev.Message = "signal refused: " + cause.Error()
	if err := r.record(ctx, ev); err != nil {
		workflow.GetLogger(ctx).Error("record refused signal", "error", err)
	}
}

// pendingRequests lists the undecided requests as approvers see them.
func (r *run) pendingRequests() []warden.ApprovalRequest {
	out := make([]warden.ApprovalRequest, 0, len(r.order))
	for _, id := range r.order {
		if p := r.pending[id]; p.outcome == "" {
			out = append(out, r.view(p))
		}
	}
	return out
}

// view is p's request with the arguments the policy hides redacted.
func (r *run) view(p *approval) warden.ApprovalRequest {
	v := p.req
	v.Args = json.RawMessage(r.redacted(p.req.CallID, p.req.Args))
	return v
}

// redacted returns args as JSON with the keys the policy named for the
// call replaced by "[redacted]".
func (r *run) redacted(callID string, args json.RawMessage) string {
	keys := r.redact[callID]
	if len(keys) == 0 {
		return string(args)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil {
		return `"[redacted]"`
	}
	for _, k := range keys {
		if _, ok := obj[k]; ok {
			obj[k] = json.RawMessage(`"[redacted]"`)
		}
	}
	b, _ := json.Marshal(obj) // map keys marshal sorted: deterministic
	return string(b)
}

// transcript is the conversation so far with redacted arguments.
func (r *run) transcript() []warden.Message {
	out := make([]warden.Message, len(r.messages))
	for i, m := range r.messages {
		if len(m.ToolCalls) > 0 {
			calls := make([]warden.ToolCall, len(m.ToolCalls))
			for j, c := range m.ToolCalls {
				c.Args = json.RawMessage(r.redacted(c.ID, c.Args))
				calls[j] = c
			}
			m.ToolCalls = calls
		}
		out[i] = m
	}
	return out
}

// approvers lists the distinct names that approved p.
func approvers(p *approval) []string {
	var names []string
	for _, d := range p.req.Approvals {
		if d.Decision == warden.ApprovalApprove {
			names = append(names, d.Approver)
		}
	}
	return names
}

func lastApprover(p *approval) string {
	if n := len(p.req.Approvals); n > 0 {
		return p.req.Approvals[n-1].Approver
	}
	return "nobody"
}

func lastReason(p *approval) string {
	if n := len(p.req.Approvals); n > 0 {
		return p.req.Approvals[n-1].Reason
	}
	return ""
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}
