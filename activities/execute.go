// The Execute activity, the enforcement point: its input and output, the
// re-check of policy and approval evidence, the single-attempt guard of
// non-idempotent tools, the sandbox run, and outputs by reference.

package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
)

// ExecuteInput is the input of Execute.
type ExecuteInput struct {
	Run  RunRef          `json:"run"`
	Step int             `json:"step"`
	Call warden.ToolCall `json:"call"`
	// Approval is the evidence for a call the policy says needs approval.
	Approval *warden.ApprovalEvidence `json:"approval,omitempty"`
	// Taint is the run's taint set when the call was authorized.
	Taint []string `json:"taint,omitempty"`
	// ArgsForm is the run's argument form (AuthorizeInput.ArgsForm).
	ArgsForm int `json:"args_form,omitempty"`
}

// ExecuteOutput is the output of Execute.
type ExecuteOutput struct {
	// Output.Content is the whole output, or a preview of it when it is
	// stored by reference (ContentRef).
	Output     warden.ToolOutput `json:"output"`
	ContentRef string            `json:"content_ref,omitempty"`
}

// Outputs longer than inlineOutputLimit bytes travel by reference: the
// workflow history holds a preview of previewBytes and the reference, and
// Plan gives the model the whole output.
const (
	inlineOutputLimit = 4 << 10
	previewBytes      = 1 << 10
)

// Preview is the part of a long output the workflow history keeps.
func Preview(full string) string {
	cut := previewBytes
	for cut > 0 && !utf8.RuneStart(full[cut]) {
		cut--
	}
	return full[:cut] + fmt.Sprintf("\n[... %d more bytes, stored by reference]", len(full)-cut)
}

// Execute is the enforcement point. It re-validates the arguments, asks the
// policy again with the approval evidence, checks that evidence against the
// decision, refuses to re-run a non-idempotent tool whose earlier attempt
// may have run, runs the tool in the sandbox and records the outcome.
func (a *Activities) Execute(ctx context.Context, in ExecuteInput) (ExecuteOutput, error) {
	call := in.Call
	turn := a.turn(in.Run, in.Step, in.Taint, in.ArgsForm)
	dec, err := govern.Enforce(ctx, a.Policy, a.Tools, call, turn, in.Approval)
	switch {
	case errors.Is(err, govern.ErrUnknownTool):
		return ExecuteOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), warden.ErrTypeUnknownTool, nil)
	case errors.Is(err, govern.ErrInvalidArgs):
		return ExecuteOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), warden.ErrTypeInvalidArgs, nil)
	case err != nil:
		return ExecuteOutput{}, a.refuse(ctx, turn, in.Call, dec, err)
	}
	spec, _ := a.Tools.Spec(call.Name)

	if !spec.Idempotent {
		if err := a.guardSingleAttempt(ctx, in); err != nil {
			return ExecuteOutput{}, err
		}
	}

	workspace, err := a.workspace(in.Run)
	if err != nil {
		return ExecuteOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), warden.ErrTypeSandbox, err)
	}
	approvalID := ""
	if in.Approval != nil {
		approvalID = in.Approval.RequestID
	}
	stop := a.heartbeat(ctx)
	out, runErr := a.Tools.Run(ctx, ToolRun{
		Tool:              call.Name,
		Args:              call.Args,
		Workspace:         workspace,
		IdempotencyKey:    IdempotencyKey(in.Run.WorkflowID, in.Step, call.ID),
		Call:              CallRef{Run: in.Run, Step: in.Step, CallID: call.ID}.String(),
		Obligations:       dec.Obligations,
		CallID:            call.ID,
		Decision:          dec.Verdict(),
		Risk:              dec.Risk,
		ApprovalRequestID: approvalID,
	})
	stop()
	// Tool output is text for the model and the audit: NUL bytes and invalid
	// UTF-8 (binary output) become U+FFFD instead of breaking either.
	out.Content = strings.ToValidUTF8(strings.ReplaceAll(out.Content, "\x00", "\uFFFD"), "\uFFFD")

	ev := a.event(in.Run, in.Step, call.ID, warden.EventToolExecuted, "")
	ev.Actor = "sandbox"
	ev.Tool = call.Name
	ev.Args = call.Args
	ev.Decision = dec.Verdict()
	ev.Risk = dec.Risk
	ev.PolicyRevision = dec.PolicyRevision
	ev.RequestID = approvalID
	if runErr != nil {
		ev.Type = warden.EventToolFailed
		ev.ID = warden.EventID(in.Run.WorkflowID, in.Run.RunID, in.Step, call.ID, warden.EventToolFailed, "")
		ev.Message = "sandbox: " + runErr.Error()
		if err := a.Audit.Append(ctx, ev); err != nil {
			return ExecuteOutput{}, auditFailed("execute "+call.Name, fmt.Errorf("%w (after sandbox error: %v)", err, runErr))
		}
		if permanent(runErr) {
			// For example a workspace over its disk quota: the run stays
			// over it, so a retry would only be refused again.
			return ExecuteOutput{}, temporal.NewNonRetryableApplicationError("sandbox could not run "+call.Name+": "+runErr.Error(), warden.ErrTypeSandbox, runErr)
		}
		return ExecuteOutput{}, temporal.NewApplicationErrorWithCause("sandbox could not run "+call.Name+": "+runErr.Error(), warden.ErrTypeSandbox, runErr)
	}
	ev.Result, _ = json.Marshal(out)
	ev.Message = fmt.Sprintf("exit %d in %d ms", out.ExitCode, out.DurationMS)
	if err := a.Audit.Append(ctx, ev); err != nil {
		// The tool ran; the retry will find tool_started (non-idempotent) or
		// run an idempotent tool again, and the audit write is retried.
		return ExecuteOutput{}, auditFailed("execute "+call.Name, err)
	}
	if a.Payloads != nil && len(out.Content) > inlineOutputLimit {
		ref, err := a.Payloads.PutPayload(ctx, []byte(out.Content))
		if err != nil {
			return ExecuteOutput{}, fmt.Errorf("execute %s: store output: %w", call.Name, err)
		}
		out.Content = Preview(out.Content)
		return ExecuteOutput{Output: out, ContentRef: ref}, nil
	}
	return ExecuteOutput{Output: out}, nil
}

// refuse records that Execute refused a call and returns the non-retryable error.
func (a *Activities) refuse(ctx context.Context, turn govern.Turn, call warden.ToolCall, dec warden.Decision, cause error) error {
	if err := a.Audit.Append(ctx, govern.RefusalEvent(turn, call, dec, cause, time.Now())); err != nil {
		return auditFailed("execute "+call.Name, fmt.Errorf("%w (while refusing: %v)", err, cause))
	}
	return temporal.NewNonRetryableApplicationError("refused at execution: "+cause.Error(), warden.ErrTypePolicyDenied, nil)
}

// guardSingleAttempt records tool_started before a non-idempotent tool
// runs, and refuses to run it when an earlier attempt already started it:
// the outcome is unknown and a retry could repeat a side effect.
func (a *Activities) guardSingleAttempt(ctx context.Context, in ExecuteInput) error {
	started := a.event(in.Run, in.Step, in.Call.ID, warden.EventToolStarted, "")
	started.Actor = "sandbox"
	started.Tool = in.Call.Name
	started.Message = "non-idempotent tool starting; it will not be retried"
	ran, err := a.Audit.Has(ctx, started.ID)
	if err != nil {
		return auditFailed("execute "+in.Call.Name, err)
	}
	if ran || activity.GetInfo(ctx).Attempt > 1 {
		unknown := a.event(in.Run, in.Step, in.Call.ID, warden.EventToolOutcomeUnknown, "")
		unknown.Actor = "system"
		unknown.Tool = in.Call.Name
		unknown.Message = "an earlier attempt may have run this non-idempotent tool; not retried"
		if err := a.Audit.Append(ctx, unknown); err != nil {
			return auditFailed("execute "+in.Call.Name, err)
		}
		return temporal.NewNonRetryableApplicationError(unknown.Message, warden.ErrTypeOutcomeUnknown, nil)
	}
	if err := a.Audit.Append(ctx, started); err != nil {
		return auditFailed("execute "+in.Call.Name, err)
	}
	return nil
}

// IdempotencyKey is the key a non-idempotent tool receives, stable across
// retries and replays of the same call.
func IdempotencyKey(workflowID string, step int, callID string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s", workflowID, step, callID)))
	return "idem_" + hex.EncodeToString(sum[:16])
}

// permanent reports whether err says that no retry can succeed (the
// sandbox's over-quota error does, through a Permanent method).
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
