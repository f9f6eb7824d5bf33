// The end of a run and the plumbing every stage uses: finishing or
// cancelling, recording audit events through the Record local activity,
// and the contexts and error texts of activities.

package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
)

// finish ends the run: status, audit row, result.
func (r *run) finish(ctx workflow.Context, status warden.RunStatus, answer, errMsg string) (warden.RunResult, error) {
	r.state.Status = status
	r.state.Answer = answer
	r.state.Error = errMsg
	ev := r.event(ctx, r.state.Step, "", warden.EventRunFinished, "")
	ev.Actor = "system"
	ev.Decision = string(status)
	ev.InputTokens = r.state.Usage.InputTokens
	ev.OutputTokens = r.state.Usage.OutputTokens
	ev.Message = cmpStr(errMsg, answer)
	ev.Result = mustJSON(r.result())
	r.recordIdentities(ctx)
	if err := r.record(ctx, ev); err != nil {
		workflow.GetLogger(ctx).Error("record run_finished", "error", err)
	}
	r.publish(ctx)
	return r.result(), nil
}

// cancelled records the cancellation and ends the workflow as cancelled.
func (r *run) cancelled(ctx workflow.Context) (warden.RunResult, error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	r.state.Status = warden.StatusCancelled
	r.state.Error = "cancelled"
	for _, id := range r.order {
		if p := r.pending[id]; p.outcome == "" {
			p.outcome = warden.ApprovalStatusRejected
		}
	}
	r.order = nil
	ev := r.event(dctx, r.state.Step, "", warden.EventRunFinished, "")
	ev.Actor = "system"
	ev.Decision = string(warden.StatusCancelled)
	ev.InputTokens = r.state.Usage.InputTokens
	ev.OutputTokens = r.state.Usage.OutputTokens
	ev.Message = "cancelled by request"
	ev.Result = mustJSON(r.result())
	r.recordIdentities(dctx)
	if err := r.record(dctx, ev); err != nil {
		workflow.GetLogger(ctx).Error("record cancellation", "error", err)
	}
	r.publish(dctx)
	return warden.RunResult{}, temporal.NewCanceledError("cancelled by request")
}

// recordIdentities audits how the run's approvals arrived (their transport
// identities), once the history holds all of them.
func (r *run) recordIdentities(ctx workflow.Context) {
	if len(r.identities) == 0 {
		return
	}
	// Runs recorded before this step existed must replay without it.
	if workflow.GetVersion(ctx, "approval-identities", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	err := workflow.ExecuteLocalActivity(recordCtx(ctx), a.RecordIdentities, activities.IdentitiesInput{
		Run: r.ref, Step: r.state.Step, Identities: r.identities,
	}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("record approval identities", "error", err)
	}
}

func (r *run) result() warden.RunResult {
	return warden.RunResult{
		Status: r.state.Status, Answer: r.state.Answer, Steps: r.state.Step,
		Usage: r.state.Usage, ToolCalls: r.toolCalls, Error: r.state.Error,
	}
}

func (r *run) setStatus(ctx workflow.Context, s warden.RunStatus) {
	r.state.Status = s
	r.publish(ctx)
}

// record writes audit events through the Record local activity.
func (r *run) record(ctx workflow.Context, events ...warden.AuditEvent) error {
	return workflow.ExecuteLocalActivity(recordCtx(ctx), a.Record, activities.RecordInput{Events: events}).Get(ctx, nil)
}

// event starts an audit event with a deterministic ID and workflow time.
func (r *run) event(ctx workflow.Context, step int, callID string, typ warden.EventType, discriminator string) warden.AuditEvent {
	return warden.AuditEvent{
		ID:         warden.EventID(r.ref.WorkflowID, r.ref.RunID, step, callID, typ, discriminator),
		Type:       typ,
		Tenant:     r.req.Tenant,
		WorkflowID: r.ref.WorkflowID,
		RunID:      r.ref.RunID,
		Step:       step,
		CallID:     callID,
		OccurredAt: workflow.Now(ctx).UTC(),
	}
}

// recordCtx runs the workflow's own audit writes: retried until the store
// takes them (an audit outage holds the run rather than lose a row) for up
// to recordPatience, except an invalid event, which cannot succeed. (A
// local activity's retries end at its schedule-to-close timeout, which
// defaults to its start-to-close timeout.)
func recordCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: recordPatience,
		StartToCloseTimeout:    15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{warden.ErrTypeInvalidAudit},
		},
	})
}

// recordPatience is how long the workflow keeps retrying one of its own
// audit writes: an outage longer than a week is an incident on its own.
const recordPatience = 7 * 24 * time.Hour

func localCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Second,
			MaximumAttempts:    6,
		},
	})
}

func isCancel(ctx workflow.Context, err error) bool {
	var ce *temporal.CanceledError
	return errors.As(err, &ce) || errors.Is(err, workflow.ErrCanceled) || ctx.Err() != nil
}

// errorMessage unwraps Temporal's activity error envelope to the cause's message.
func errorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out (" + timeoutErr.TimeoutType().String() + ")"
	}
	return err.Error()
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
