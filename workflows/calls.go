// The tool calls of one answer: authorising each (frozen per decision),
// running what the policy allows, waiting for approvals, and turning
// every outcome into the message the model reads.

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
)

// callState tracks one tool call through authorize, approval and execute.
type callState struct {
	// call is what runs: the model's call, or its approver-edited version.
	call warden.ToolCall
	// proposed holds the model's args when an approver edited them.
	proposed json.RawMessage
	editedBy string
	auth     activities.AuthorizeOutput
	// taint is the taint set auth was decided with (frozenTurn).
	taint    []string
	reauths  int
	approval *approval
	runIt    bool
	outcome  string
	content  string
	// contentRef references the whole output when content is a preview.
	contentRef string
}

// authorize runs the Authorize local activity for call.
func (r *run) authorize(ctx workflow.Context, step int, call warden.ToolCall, actor, revision string) (activities.AuthorizeOutput, error) {
	var out activities.AuthorizeOutput
	now := workflow.Now(ctx)
	err := workflow.ExecuteLocalActivity(localCtx(ctx), a.Authorize, activities.AuthorizeInput{
		Run: r.ref, Step: step, Call: call, RequestedAt: now, ApprovalTimeout: r.req.ApprovalTimeout,
		Actor: actor, Revision: revision, Taint: slices.Clone(r.taint), ArgsForm: r.argsForm(),
	}).Get(ctx, &out)
	if err == nil && out.Verdict == warden.VerdictRequireApproval && out.ExpiresAt.IsZero() {
		out.ExpiresAt = now.Add(r.req.ApprovalTimeout) // histories recorded before policy-set expiry
	}
	if err == nil {
		r.redact[call.ID] = out.Decision.Obligations.RedactArgs
	}
	return out, err
}

// handleCalls authorizes every call of a turn (pre holds the decisions Plan
// already made, in order; the Authorize local activity decides the rest),
// executes the allowed ones, waits for the approvals the policy asks for
// (all requests of the turn are open at once, each with its own expiry and
// escalation) and executes the approved ones, and returns one tool message
// per call, in the model's order. stop is set when a rejection ends the
// run (policy stop_on_reject). It returns an error only on cancellation.
func (r *run) handleCalls(ctx workflow.Context, step int, calls []warden.ToolCall, pre []activities.AuthorizeOutput) (msgs []warden.Message, stop string, err error) {
	states, waiting, err := r.decideCalls(ctx, step, calls, pre)
	if err != nil {
		return nil, "", err
	}
	if waiting, err = r.runAllowed(ctx, step, states, waiting); err != nil {
		return nil, "", err
	}
	if len(waiting) > 0 {
		if err := r.awaitApprovals(ctx, waiting); err != nil {
			return nil, "", err
		}
		if stop, err = r.settleApprovals(ctx, step, waiting); err != nil {
			return nil, "", err
		}
	}
	return r.toolMessages(states), stop, nil
}

// decideCalls takes the decision on each call of the answer (Plan's, or
// the Authorize local activity's) with the run's taint now, and sorts
// them: allowed (runIt), waiting for approval (an open request each), or
// settled with their outcome. It returns an error only on cancellation.
func (r *run) decideCalls(ctx workflow.Context, step int, calls []warden.ToolCall, pre []activities.AuthorizeOutput) (states, waiting []*callState, err error) {
	states = make([]*callState, len(calls))
	r.turnMalformed = true
	for i, call := range calls {
		cs := &callState{call: call}
		states[i] = cs
		if i >= maxCallsPerTurn {
			cs.outcome = outcomeTooManyCalls
			cs.content = fmt.Sprintf("refused: at most %d tool calls per answer; call %s again in your next answer if you still need it", maxCallsPerTurn, call.Name)
			ev := r.event(ctx, step, call.ID, warden.EventToolRequested, "")
			ev.Actor = "model"
			ev.Tool = call.Name
			ev.Decision = outcomeTooManyCalls
			ev.Message = cs.content
			if err := r.record(ctx, ev); err != nil {
				workflow.GetLogger(ctx).Error("record refused call", "error", err)
			}
			continue
		}
		cs.taint = slices.Clone(r.taint)
		if i < len(pre) {
			cs.auth = pre[i]
			r.redact[call.ID] = cs.auth.Decision.Obligations.RedactArgs
		} else {
			cs.auth, err = r.authorize(ctx, step, call, "model", "")
		}
		if err != nil {
			if isCancel(ctx, err) {
				return nil, nil, err
			}
			cs.outcome, cs.content = outcomeDenied, "denied: authorization could not be completed ("+errorMessage(err)+"); the call did not run"
			continue
		}
		if cs.auth.Verdict != activities.VerdictInvalidArgs && !unknownTool(cs.auth) {
			r.turnMalformed = false
		}
		switch cs.auth.Verdict {
		case warden.VerdictAllow:
			cs.runIt = true
		case warden.VerdictRequireApproval:
			cs.approval = r.openApproval(ctx, step, cs)
			waiting = append(waiting, cs)
		case activities.VerdictInvalidArgs:
			cs.outcome, cs.content = outcomeInvalidArgs, cs.auth.Message
		default:
			cs.outcome, cs.content = outcomeDenied, cs.auth.Message
		}
	}
	return states, waiting, nil
}

// runAllowed runs what the policy allows now, in the model's order: a
// pending approval does not hold up calls that need none. A call an
// earlier call of the answer tainted the run before is decided again
// first, and joins waiting when it now needs approval.
func (r *run) runAllowed(ctx workflow.Context, step int, states, waiting []*callState) ([]*callState, error) {
	for _, cs := range states {
		if !cs.runIt {
			continue
		}
		if r.taintGrew(cs) {
			// An earlier call of this answer tainted the run: decide again.
			if err := r.reauthorize(ctx, step, cs); err != nil {
				return nil, err
			}
			switch cs.auth.Verdict {
			case warden.VerdictAllow:
			case warden.VerdictRequireApproval:
				cs.approval = r.openApproval(ctx, step, cs)
				waiting = append(waiting, cs)
				continue
			default:
				continue // reauthorize set the outcome
			}
		}
		if err := r.execute(ctx, step, cs); err != nil {
			return nil, err
		}
	}
	return waiting, nil
}

// awaitApprovals opens every waiting request at once (each with its own
// expiry and escalation watcher) and waits until all are decided.
func (r *run) awaitApprovals(ctx workflow.Context, waiting []*callState) error {
	r.setStatus(ctx, warden.StatusAwaitingApproval)
	for _, cs := range waiting {
		p := cs.approval
		workflow.Go(ctx, func(ctx workflow.Context) { r.watch(ctx, p) })
	}
	if err := workflow.Await(ctx, func() bool {
		for _, cs := range waiting {
			if cs.approval.outcome == "" {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	r.closeApprovals(waiting)
	r.setStatus(ctx, warden.StatusRunning)
	return nil
}

// settleApprovals runs the approved calls (decided again first when the
// run's taint grew meanwhile) and gives the rejected and expired ones
// their outcome; stop is set when a rejection ends the run.
func (r *run) settleApprovals(ctx workflow.Context, step int, waiting []*callState) (stop string, err error) {
	for _, cs := range waiting {
		p := cs.approval
		switch p.outcome {
		case warden.ApprovalStatusApproved:
			if r.taintGrew(cs) {
				approvedID := p.req.RequestID
				if err := r.reauthorize(ctx, step, cs); err != nil {
					return "", err
				}
				switch {
				case cs.auth.Verdict == warden.VerdictAllow:
				case cs.auth.Verdict == warden.VerdictRequireApproval && cs.auth.RequestID == approvedID:
					// The approval given covers the call as decided now.
				case cs.auth.Verdict == warden.VerdictRequireApproval:
					cs.outcome = outcomeDenied
					cs.content = fmt.Sprintf("denied: after the approval, %s was decided again (the run had seen untrusted content) "+
						"and now needs a different approval (%s); the call did not run: call it again to ask for it", cs.call.Name, cs.auth.RequestID)
					continue
				default:
					continue // reauthorize set the outcome
				}
			}
			if err := r.execute(ctx, step, cs); err != nil {
				return "", err
			}
		case warden.ApprovalStatusExpired:
			cs.outcome = outcomeExpired
			cs.content = fmt.Sprintf("rejected: nobody approved %s before the request expired at %s; the call did not run",
				cs.call.Name, p.req.ExpiresAt.UTC().Format(time.RFC3339))
		default:
			cs.outcome = outcomeRejected
			cs.content = fmt.Sprintf("rejected by %s: %s; the call did not run", lastApprover(p), cmpStr(lastReason(p), "no reason given"))
			if cs.auth.Decision.Obligations.StopOnReject && stop == "" {
				stop = fmt.Sprintf("stopped: %s rejected %s and the policy ends the run on a rejection", lastApprover(p), cs.call.Name)
			}
		}
	}
	return stop, nil
}

// toolMessages counts each call's outcome and gives the model one tool
// message per call, in its order.
func (r *run) toolMessages(states []*callState) []warden.Message {
	msgs := make([]warden.Message, 0, len(states))
	for _, cs := range states {
		r.toolCalls[cs.outcome]++
		msgs = append(msgs, warden.Message{Role: warden.RoleTool, ToolCallID: cs.call.ID, Name: cs.call.Name, Content: cs.content, ContentRef: cs.contentRef})
	}
	return msgs
}

// argsForm is how the run hashes tool arguments: the audit's canonical
// form since frozen-turn (an auditor recomputes an approval's args hash
// from the stored args, and request IDs are bound to the run).
func (r *run) argsForm() int {
	if r.frozenTurn {
		return warden.ArgsFormCanonical
	}
	return warden.ArgsFormLegacy
}

// taintGrew reports that the run has seen untrusted content since cs was
// decided, so the decision no longer holds for the run as it is now.
func (r *run) taintGrew(cs *callState) bool {
	return r.frozenTurn && !slices.Equal(cs.taint, r.taint)
}

// reauthorize decides cs again with the run's taint as it is now,
// recording the new decision under its own revision. When the call may
// not run it sets cs's outcome and content.
func (r *run) reauthorize(ctx workflow.Context, step int, cs *callState) error {
	cs.reauths++
	auth, err := r.authorize(ctx, step, cs.call, cmpStr(cs.editedBy, "model"), fmt.Sprintf("taint-%d", cs.reauths))
	if err != nil {
		if isCancel(ctx, err) {
			return err
		}
		cs.auth.Verdict = warden.VerdictDeny
		cs.outcome, cs.content = outcomeDenied, "denied: authorization could not be completed ("+errorMessage(err)+"); the call did not run"
		return nil
	}
	idempotent := cs.auth.Idempotent
	cs.auth, cs.taint = auth, slices.Clone(r.taint)
	cs.auth.Idempotent = idempotent
	switch auth.Verdict {
	case warden.VerdictAllow, warden.VerdictRequireApproval:
	case activities.VerdictInvalidArgs:
		cs.outcome, cs.content = outcomeInvalidArgs, auth.Message
	default:
		cs.outcome, cs.content = outcomeDenied, auth.Message
	}
	return nil
}

// execute runs one permitted call through the Execute activity.
func (r *run) execute(ctx workflow.Context, step int, cs *callState) error {
	retry := &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    3,
		NonRetryableErrorTypes: []string{
			warden.ErrTypePolicyDenied, warden.ErrTypeInvalidArgs,
			warden.ErrTypeUnknownTool, warden.ErrTypeOutcomeUnknown,
		},
	}
	if !cs.auth.Idempotent {
		retry.MaximumAttempts = 1
	}
	timeout := time.Duration(max(cs.auth.Decision.Obligations.TimeoutSeconds, 1)) * time.Second
	actCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout + time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy:         retry,
		Summary:             activitySummary(cs),
	})
	in := activities.ExecuteInput{Run: r.ref, Step: step, Call: cs.call, Taint: slices.Clone(r.taint)}
	if r.frozenTurn {
		in.Taint = slices.Clone(cs.taint) // the taint of the decision Execute enforces
		in.ArgsForm = warden.ArgsFormCanonical
	}
	if p := cs.approval; p != nil {
		in.Approval = &warden.ApprovalEvidence{RequestID: p.req.RequestID, ArgsHash: p.req.ArgsHash, Approvers: approvers(p)}
	}
	var out activities.ExecuteOutput
	err := workflow.ExecuteActivity(actCtx, a.Execute, in).Get(ctx, &out)
	if err == nil {
		cs.outcome = outcomeExecuted
		cs.contentRef = out.ContentRef
		cs.content = out.Output.Content
		if out.Output.IsError {
			cs.content = fmt.Sprintf("error (exit code %d):\n%s", out.Output.ExitCode, out.Output.Content)
		}
		cs.content = r.untrusted(cs.call.Name, cs.content)
		if cs.editedBy != "" {
			cs.content = fmt.Sprintf("note: %s edited the arguments before approving; the call ran with %s instead of %s\n%s",
				cs.editedBy, r.redacted(cs.call.ID, cs.call.Args), r.redacted(cs.call.ID, cs.proposed), cs.content)
		}
		return nil
	}
	if isCancel(ctx, err) {
		return err
	}
	var appErr *temporal.ApplicationError
	errors.As(err, &appErr)
	switch {
	case appErr != nil && appErr.Type() == warden.ErrTypePolicyDenied:
		cs.outcome, cs.content = outcomeDenied, "denied: "+appErr.Message()
	case appErr != nil && appErr.Type() == warden.ErrTypeOutcomeUnknown:
		cs.outcome, cs.content = outcomeOutcomeUnknown, unknownOutcomeText(cs.call.Name)
	case !cs.auth.Idempotent:
		// The single attempt died (worker crash, timeout): the tool may have
		// run. Say so, record it, never retry.
		cs.outcome, cs.content = outcomeOutcomeUnknown, unknownOutcomeText(cs.call.Name)
		ev := r.event(ctx, step, cs.call.ID, warden.EventToolOutcomeUnknown, "")
		ev.Actor = "system"
		ev.Tool = cs.call.Name
		ev.Message = "the only attempt ended without a result (" + errorMessage(err) + "); not retried"
		if rerr := r.record(ctx, ev); rerr != nil {
			workflow.GetLogger(ctx).Error("record outcome unknown", "error", rerr)
		}
	default:
		cs.outcome, cs.content = outcomeFailed, "failed: "+errorMessage(err)
	}
	return nil
}

// unknownTool reports whether auth refused a tool name nothing is
// registered under; outputs recorded before UnknownTool existed say so by
// their message alone.
func unknownTool(auth activities.AuthorizeOutput) bool {
	return auth.UnknownTool || strings.HasPrefix(auth.Message, "unknown tool")
}

func unknownOutcomeText(tool string) string {
	return "outcome unknown: " + tool + " may or may not have run (its attempt ended without a result) and it was not retried, " +
		"because it is not idempotent. Tell the user; do not call it again blindly."
}
