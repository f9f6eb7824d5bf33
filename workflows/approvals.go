package workflows

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
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
	// The approve payload arrives raw (converter.RawValue) so that one that
	// is too large, not JSON or not shaped like a decision is refused and
	// audited like any other refusal, not dropped by the SDK's decoder.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, warden.UpdateApprove,
		func(ctx workflow.Context, v converter.RawValue) (warden.ApprovalReceipt, error) {
			d, _ := decodeApplied(v) // the validator accepted it
			receipt, err := r.decide(ctx, d, "update")
			return receipt, refusal(err)
		},
		workflow.UpdateHandlerOptions{
			Validator: func(ctx workflow.Context, v converter.RawValue) error { return refusal(r.validate(ctx, v)) },
			Description: `Approve or reject a pending tool call. Payload: {"request_id": "apr_...", "decision": "approve" | "reject", ` +
				`"approver": "<your name>", "reason": "..."}; optional "args": {...} to approve edited arguments (the policy decides again), ` +
				`"signature" when the policy demands signed approvals. The request_id is in the run's details and the pending_approvals query. ` +
				`At most 16 KiB; refusals are audited.`,
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
			var v converter.RawValue
			if more := ch.Receive(ctx, &v); !more {
				return
			}
			if r.refusalLimits { // a payload that does not decode is refused and audited too
				d, err := decodeDecision(v)
				if err != nil {
					r.refuse(ctx, d, "signal", err)
					continue
				}
				if _, err := r.decide(ctx, d, "signal"); err != nil && !errors.Is(err, warden.ErrApprovalInvalid) {
					workflow.GetLogger(ctx).Warn("approval signal not applied", "request_id", d.RequestID, "error", err)
				}
				continue
			}
			d, ok := decodeApplied(v)
			if !ok {
				workflow.GetLogger(ctx).Error("approval signal dropped: its payload does not decode as an approval decision")
				continue
			}
			if r.approvalRecord { // decideOnce audits what it refuses
				if _, err := r.decide(ctx, d, "signal"); err != nil && !errors.Is(err, warden.ErrApprovalInvalid) {
					workflow.GetLogger(ctx).Warn("approval signal not applied", "request_id", d.RequestID, "error", err)
				}
				continue
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
		NameForm:       int(r.nameForm()),
	}}
	if r.runBound {
		p.req.RunID = workflow.GetInfo(ctx).WorkflowExecution.RunID
		p.req.Nonce = requestNonce(ctx)
	}
	if secs := dec.Obligations.EscalateAfterSeconds; secs > 0 {
		p.escalateAt = now.Add(time.Duration(secs) * time.Second)
	}
	r.pending[p.req.RequestID] = p
	r.order = append(r.order, p.req.RequestID)
	return p
}

// requestNonce draws a request's nonce: 128 random bits, kept in the
// history as a side effect, so a replay sees the same value and a reset to
// before the request draws a new one.
func requestNonce(ctx workflow.Context) string {
	var nonce string
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			panic(fmt.Sprintf("approval nonce: crypto/rand failed: %v", err))
		}
		return hex.EncodeToString(b)
	}).Get(&nonce)
	if err != nil {
		panic(fmt.Sprintf("approval nonce: %v", err))
	}
	return nonce
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
	if r.approvalRecord {
		// A decision being recorded now is applied first (or refused).
		if err := workflow.Await(ctx, func() bool { return !r.deciding }); err != nil {
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

// decide applies a valid decision d that arrived by via ("update" or
// "signal"), or says why it cannot.
func (r *run) decide(ctx workflow.Context, d warden.ApprovalDecision, via string) (warden.ApprovalReceipt, error) {
	if r.approvalRecord {
		return r.decideOnce(ctx, d, via)
	}
	return r.decideAsTyped(ctx, d, via)
}

func (r *run) receipt(p *approval) warden.ApprovalReceipt {
	return warden.ApprovalReceipt{
		RequestID: p.req.RequestID, Status: cmpStr(p.outcome, warden.ApprovalStatusPending),
		Approvals: len(approvers(p)), Quorum: p.req.Quorum,
	}
}

// refuseSignal audits an approval Signal that could not be applied.
func (r *run) refuseSignal(ctx workflow.Context, d warden.ApprovalDecision, cause error) {
	r.refuse(ctx, d, "signal", cause)
}

// refuse audits a decision that arrived by via and was not applied. Under
// approval-record the row names the request's step, call and tool when the
// request is known; under refusal-limits a flood is audited in summary
// (RefusalAudited).
func (r *run) refuse(ctx workflow.Context, d warden.ApprovalDecision, via string, cause error) {
	r.refusals++
	workflow.GetLogger(ctx).Warn("approval "+via+" refused", "request_id", clip(d.RequestID, 256), "approver", clip(d.Approver, 256), "error", cause)
	if !r.refusalLimits {
		ev := r.refusalEvent(ctx, d, fmt.Sprint(r.refusals), via, cause)
		ev.Actor = cmpStr(strings.TrimSpace(d.Approver), "unknown")
		ev.RequestID, ev.Decision, ev.Message = d.RequestID, d.Decision, via+" refused: "+cause.Error()
		r.recordRefusal(ctx, ev, via)
		return
	}
	own, summary := RefusalAudited(r.refusals)
	if !own && !summary {
		return
	}
	ev := r.refusalEvent(ctx, d, fmt.Sprint(r.refusals), via, cause)
	if summary {
		SummariseRefusal(&ev, r.refusals)
	}
	r.recordRefusal(ctx, ev, via)
}

func (r *run) recordRefusal(ctx workflow.Context, ev warden.AuditEvent, via string) {
	if err := r.record(ctx, ev); err != nil {
		workflow.GetLogger(ctx).Error("record refused "+via, "error", err)
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
