package workflows

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
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
	if err := workflow.SetUpdateHandlerWithOptions(ctx, warden.UpdateApprove,
		func(ctx workflow.Context, d warden.ApprovalDecision) (warden.ApprovalReceipt, error) {
			return r.decide(ctx, d, "update")
		},
		workflow.UpdateHandlerOptions{
			Validator: func(ctx workflow.Context, d warden.ApprovalDecision) error { return r.check(ctx, d) },
			Description: `Approve or reject a pending tool call. Payload: {"request_id": "apr_...", "decision": "approve" | "reject", ` +
				`"approver": "<your name>", "reason": "..."}. The request_id is in the run's details and the pending_approvals query.`,
		},
	); err != nil {
		return err
	}
	ch := workflow.GetSignalChannelWithOptions(ctx, warden.SignalApprove, workflow.SignalChannelOptions{
		Description: `Same as the approve Update, for deployments without Updates: {"request_id", "decision": "approve" | "reject", "approver", "reason"}. ` +
			`Invalid signals are refused and audited.`,
	})
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

// openApproval registers a pending approval request for a call.
func (r *run) openApproval(ctx workflow.Context, step int, call warden.ToolCall, auth activities.AuthorizeOutput, expires time.Time) *approval {
	p := &approval{req: warden.ApprovalRequest{
		RequestID:      auth.RequestID,
		Step:           step,
		CallID:         call.ID,
		Tool:           call.Name,
		Args:           call.Args,
		ArgsHash:       auth.ArgsHash,
		Risk:           auth.Decision.Risk,
		Reasons:        auth.Decision.Reasons,
		Approvers:      auth.Decision.Approvers,
		Quorum:         max(auth.Decision.Quorum, 1),
		Requester:      r.req.Requester,
		PolicyRevision: auth.Decision.PolicyRevision,
		RequestedAt:    workflow.Now(ctx).UTC(),
		ExpiresAt:      expires.UTC(),
	}}
	r.pending[p.req.RequestID] = p
	r.order = append(r.order, p.req.RequestID)
	return p
}

// awaitApproval blocks until p is decided or expires. It returns an error
// only on cancellation.
func (r *run) awaitApproval(ctx workflow.Context, p *approval) error {
	wait := p.req.ExpiresAt.Sub(workflow.Now(ctx))
	if wait > 0 {
		ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      wait,
			TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("approval of %s expires (%s)", p.req.Tool, p.req.RequestID)},
		}, func() bool { return p.outcome != "" })
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	if p.outcome != "" {
		return nil
	}
	p.outcome = warden.ApprovalStatusExpired
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
	return nil
}

// closeApprovals removes decided requests from the pending list.
func (r *run) closeApprovals(ctx workflow.Context, done []*callState) {
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
	return p.req.Check(d, workflow.Now(ctx))
}

// decide applies a valid decision: audit first, then state, so the
// approval is on record before the call can run.
func (r *run) decide(ctx workflow.Context, d warden.ApprovalDecision, via string) (warden.ApprovalReceipt, error) {
	if err := r.check(ctx, d); err != nil {
		return warden.ApprovalReceipt{}, err
	}
	p := r.pending[d.RequestID]
	d.Approver = strings.TrimSpace(d.Approver)
	ev := r.event(ctx, p.req.Step, p.req.CallID, warden.EventApprovalDecided, d.Approver)
	ev.Actor = d.Approver
	ev.Tool = p.req.Tool
	ev.Args = p.req.Args
	ev.RequestID = p.req.RequestID
	ev.Decision = d.Decision
	ev.Risk = p.req.Risk
	ev.PolicyRevision = p.req.PolicyRevision
	ev.Message = fmt.Sprintf("%s via %s: %s", d.Decision, via, cmpStr(d.Reason, "no reason given"))
	if err := r.record(ctx, ev); err != nil {
		return warden.ApprovalReceipt{}, fmt.Errorf("the decision could not be audited, so it was not applied; try again: %w", err)
	}
	// Another decision may have landed while the audit write ran.
	if err := r.check(ctx, d); err != nil {
		return r.receipt(p), nil
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

func (r *run) pendingRequests() []warden.ApprovalRequest {
	out := make([]warden.ApprovalRequest, 0, len(r.order))
	for _, id := range r.order {
		if p := r.pending[id]; p.outcome == "" {
			out = append(out, p.req)
		}
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
