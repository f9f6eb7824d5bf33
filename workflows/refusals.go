package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
)

// Limits on what one approval attempt may cost the run (issue 13, class 3).
const (
	// MaxDecisionBytes is the largest approve payload accepted: a larger
	// Update is refused by the validator (it never reaches the history), a
	// larger Signal is refused and audited.
	MaxDecisionBytes = 16 << 10
	// maxRefusalTextBytes bounds the actor and message of a refusal row.
	maxRefusalTextBytes = 2 << 10
	// Refused Signals land in the history whatever the workflow does; the
	// run audits the first refusalsInFull of them one by one, then one
	// summary row per refusalSummaryEvery, so a flood does not also add an
	// audit write per signal.
	refusalsInFull      = 20
	refusalSummaryEvery = 50
)

// RefusalSink takes the approval_refused row of an approve Update that the
// validator refused. Such an Update leaves no history, so the row is
// written from the worker side (worker.RefusalRecorder), outside the
// workflow's commands; the sink must not block.
type RefusalSink func(warden.AuditEvent)

type refusalSinkKey struct{}

// WithRefusalSink returns ctx with sink attached, for a worker interceptor
// to call before the approve Update's validator runs.
func WithRefusalSink(ctx workflow.Context, sink RefusalSink) workflow.Context {
	return workflow.WithValue(ctx, refusalSinkKey{}, sink)
}

func refusalSinkOf(ctx workflow.Context) RefusalSink {
	s, _ := ctx.Value(refusalSinkKey{}).(RefusalSink)
	return s
}

// decodeDecision parses an approve payload strictly: JSON, bounded in size
// and shaped like a warden.ApprovalDecision.
func decodeDecision(v converter.RawValue) (warden.ApprovalDecision, error) {
	var d warden.ApprovalDecision
	p := v.Payload()
	if p == nil {
		return d, fmt.Errorf("%w: the payload is empty; send an approval decision", warden.ErrApprovalInvalid)
	}
	if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != converter.MetadataEncodingJSON {
		return d, fmt.Errorf("%w: the payload's encoding is %q; send JSON (%s)", warden.ErrApprovalInvalid, clip(enc, 64), converter.MetadataEncodingJSON)
	}
	if err := json.Unmarshal(p.GetData(), &d); err != nil {
		return warden.ApprovalDecision{}, fmt.Errorf(`%w: the payload is not an approval decision (%v); send {"request_id": "apr_...", "decision": "approve"|"reject", "approver": "...", "reason": "..."}`,
			warden.ErrApprovalInvalid, clip(err.Error(), 256))
	}
	// Decoded first so that the refusal's row names who sent it and for
	// which request (the server has already bounded the bytes).
	if n := len(p.GetData()); n > MaxDecisionBytes {
		return d, fmt.Errorf("%w: the payload is %d bytes; an approval decision may be at most %d (shorten the reason)",
			warden.ErrApprovalInvalid, n, MaxDecisionBytes)
	}
	return d, nil
}

// decodeApplied decodes a payload the way the SDK decoded it into the
// handler's argument before the payload arrived raw: the Update's handler
// runs only after the validator accepted it (or an older version of the
// workflow did, and replay must see what was applied then).
func decodeApplied(v converter.RawValue) (warden.ApprovalDecision, bool) {
	var d warden.ApprovalDecision
	if p := v.Payload(); p != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &d); err != nil {
			return warden.ApprovalDecision{}, false
		}
	}
	return d, true
}

// validate is the approve Update's validator: the payload is decoded
// strictly and checked, and a refusal goes to the worker's sink as an
// approval_refused row (a refused Update leaves no history). Validators do
// not run on replay, so this needs no version gate.
func (r *run) validate(ctx workflow.Context, v converter.RawValue) error {
	d, err := decodeDecision(v)
	if err == nil {
		err = r.check(ctx, d)
	}
	if err == nil {
		return nil
	}
	if sink := refusalSinkOf(ctx); sink != nil && !workflow.IsReplaying(ctx) {
		id := ""
		if info := workflow.GetCurrentUpdateInfo(ctx); info != nil {
			id = info.ID
		}
		if id == "" {
			sum := sha256.Sum256(v.Payload().GetData())
			id = "payload-" + hex.EncodeToString(sum[:8])
		}
		ev := r.refusalEvent(ctx, d, "update/"+id, "update", err)
		ev.Message += " (update ID " + clip(id, 128) + "; written by the worker, the refused Update is not in the history)"
		sink(ev)
	}
	return err
}

// refusalEvent is the approval_refused row of d, refused when it arrived
// by via. It changes no state (the validator builds it too).
func (r *run) refusalEvent(ctx workflow.Context, d warden.ApprovalDecision, discriminator, via string, cause error) warden.AuditEvent {
	step, callID, tool := r.state.Step, "", ""
	if p, ok := r.pending[d.RequestID]; ok && r.approvalRecord {
		step, callID, tool = p.req.Step, p.req.CallID, p.req.Tool
	}
	ev := r.event(ctx, step, callID, warden.EventApprovalRefused, discriminator)
	ev.Actor = cmpStr(clip(strings.TrimSpace(d.Approver), 256), "unknown")
	ev.Tool = tool
	ev.RequestID = clip(d.RequestID, 256)
	ev.Decision = clip(d.Decision, 32)
	ev.Message = clip(via+" refused: "+cause.Error(), maxRefusalTextBytes)
	return ev
}

// RefusalAudited says whether the n-th refusal (counted from 1) of one
// run gets a row of its own and, when it does not, whether it closes a
// summary: the first refusalsInFull are audited one by one, then one row
// per refusalSummaryEvery. The workflow applies it to refused Signals, the
// worker's RefusalRecorder to refused Updates.
func RefusalAudited(n int) (own, summary bool) {
	if n <= refusalsInFull {
		return true, false
	}
	return false, (n-refusalsInFull)%refusalSummaryEvery == 0
}

// SummariseRefusal turns ev, the n-th refusal of its run, into the summary
// row of the refusals since the last row (RefusalAudited said summary).
func SummariseRefusal(ev *warden.AuditEvent, n int) {
	ev.Message = clip(fmt.Sprintf("%d approval attempts refused in all in this run; the last %d are summarised in this row (only the first %d have rows of their own); the last: %s",
		n, refusalSummaryEvery, refusalsInFull, ev.Message), maxRefusalTextBytes)
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
