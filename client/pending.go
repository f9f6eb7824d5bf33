package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
)

// PendingFromMemo reads the pending requests from a workflow's memo
// (DescribeWorkflowExecution or ListWorkflowExecutions). A memo without
// the key means nothing is pending.
func PendingFromMemo(memo *commonpb.Memo) ([]warden.PendingApproval, error) {
	payload, ok := memo.GetFields()[warden.MemoPending]
	if !ok || payload == nil || len(payload.GetData()) == 0 {
		return nil, nil
	}
	var out []warden.PendingApproval
	if err := converter.GetDefaultDataConverter().FromPayload(payload, &out); err != nil {
		return nil, fmt.Errorf("memo %s is not a list of pending approvals: %w", warden.MemoPending, err)
	}
	return out, nil
}

// Where a list of pending approvals came from (PendingResult.Source).
const (
	// PendingSourceQuery: the live pending_approvals query, answered by a
	// worker; it has the (redacted) arguments and the policy's reasons.
	PendingSourceQuery = "query"
	// PendingSourceMemo: the run's memo (warden.pending) read from the
	// server, as of the run's last workflow task; no arguments, no reasons.
	PendingSourceMemo = "memo"
)

// DefaultQueryTimeout is how long Pending waits for the live query before
// it reads the memo instead.
const DefaultQueryTimeout = 3 * time.Second

// PendingOptions tune Pending.
type PendingOptions struct {
	// QueryTimeout bounds the live query; zero means DefaultQueryTimeout.
	// A busy or absent worker makes the query fail or time out, and then
	// the memo is read.
	QueryTimeout time.Duration
}

// PendingResult is a run's pending approval requests and where they came from.
type PendingResult struct {
	Requests []warden.ApprovalRequest
	// Source is PendingSourceQuery or PendingSourceMemo.
	Source string
	// QueryErr is why the live query was not used (nil when Source is
	// PendingSourceQuery).
	QueryErr error
}

// Pending lists the run's tool calls waiting for approval: from the live
// query when a worker answers within opts.QueryTimeout, else from the
// run's memo through DescribeWorkflowExecution, which needs no worker.
// Requests read from the memo have no Args and no Reasons.
func (c *Client) Pending(ctx context.Context, workflowID string, opts PendingOptions) (PendingResult, error) {
	timeout := opts.QueryTimeout
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	began := time.Now()
	out, qerr := c.queryPending(qctx, workflowID)
	timedOut := qctx.Err() != nil || time.Since(began) >= timeout
	cancel()
	if qerr == nil {
		return PendingResult{Requests: out, Source: PendingSourceQuery}, nil
	}
	if ctx.Err() != nil {
		return PendingResult{}, fmt.Errorf("pending approvals of %s: %w", workflowID, qerr)
	}
	if timedOut {
		qerr = fmt.Errorf("no worker answered the query within %s: %w", timeout, qerr)
	}
	desc, err := c.tc.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return PendingResult{}, fmt.Errorf("pending approvals of %s: the query failed (%v) and so did reading the memo: %w", workflowID, qerr, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	memo, err := PendingFromMemo(info.GetMemo())
	if err != nil {
		return PendingResult{}, fmt.Errorf("pending approvals of %s: the query failed (%v) and %w", workflowID, qerr, err)
	}
	if memo == nil && searchKeyword(info.GetSearchAttributes(), warden.SearchAttrStatus) == warden.SearchStatus(warden.StatusAwaitingApproval) {
		return PendingResult{}, fmt.Errorf("pending approvals of %s: the run awaits approval but its memo has no %s key "+
			"(it was started by a worker without the pending memo), so only the query can list them, and it failed: %w",
			workflowID, warden.MemoPending, qerr)
	}
	res := PendingResult{Requests: make([]warden.ApprovalRequest, 0, len(memo)), Source: PendingSourceMemo, QueryErr: qerr}
	for _, p := range memo {
		res.Requests = append(res.Requests, p.Request())
	}
	return res, nil
}

func (c *Client) queryPending(ctx context.Context, workflowID string) ([]warden.ApprovalRequest, error) {
	var out []warden.ApprovalRequest
	v, err := c.tc.QueryWorkflow(ctx, workflowID, "", warden.QueryPendingApprovals)
	if err != nil {
		return nil, err
	}
	if err := v.Get(&out); err != nil {
		return nil, err
	}
	return out, nil
}

func searchKeyword(sa *commonpb.SearchAttributes, name string) string {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return ""
	}
	var v string
	if converter.GetDefaultDataConverter().FromPayload(p, &v) != nil {
		return ""
	}
	return v
}

// How a decision reached the run (DecideResult.Via).
const (
	DecidedViaUpdate = "update"
	DecidedViaSignal = "signal"
)

// DefaultUpdateTimeout is how long DecideOrSignal waits for the approve
// Update before it sends the Signal instead.
const DefaultUpdateTimeout = 10 * time.Second

// DecideOptions tune DecideOrSignal.
type DecideOptions struct {
	// UpdateTimeout bounds the approve Update; zero means
	// DefaultUpdateTimeout. When no worker completes it in time, the
	// decision is checked against the pending request (from the query or
	// the memo) and sent as the approve Signal.
	UpdateTimeout time.Duration
	// QueryTimeout is passed to Pending for that check.
	QueryTimeout time.Duration
	// SignalOnly skips the Update: the decision is checked against the
	// pending request and sent as the Signal. The receipt then says
	// "signalled", not the outcome. A run that is not in a worker's cache
	// then costs one workflow task instead of a failed speculative task
	// and a replay (BENCHMARKS.md, "approving parked runs").
	SignalOnly bool
}

// DecideResult is what became of a decision and how it was sent.
type DecideResult struct {
	Receipt warden.ApprovalReceipt
	// Via is DecidedViaUpdate or DecidedViaSignal.
	Via string
	// UpdateErr is why the Update was not used (nil when Via is update).
	UpdateErr error
	// Source is where the pending request checked before the Signal came
	// from (PendingSource*); empty when Via is update.
	Source string
}

// DecideOrSignal sends d through the approve Update and, when no worker
// completes the Update within opts.UpdateTimeout (a saturated or absent
// worker), checks d against the pending request read without a worker
// (Pending) and sends it as the approve Signal, which the server accepts
// at once and the run applies when a worker takes it. A decision the
// workflow or the check refuses returns an error wrapping
// [warden.ErrApprovalInvalid]. An Update that timed out may still be applied later;
// the Signal is then refused as a repeat decision and audited
// (approval_refused), so the decision counts once.
func (c *Client) DecideOrSignal(ctx context.Context, workflowID string, d warden.ApprovalDecision, opts DecideOptions) (DecideResult, error) {
	timeout := opts.UpdateTimeout
	if timeout <= 0 {
		timeout = DefaultUpdateTimeout
	}
	var uerr error
	timedOut := false
	if opts.SignalOnly {
		uerr = errors.New("not tried (signal only)")
	} else {
		uctx, cancel := context.WithTimeout(ctx, timeout)
		began := time.Now()
		var receipt warden.ApprovalReceipt
		receipt, uerr = c.Decide(uctx, workflowID, d)
		// The SDK may report the deadline as a cancelled stream.
		timedOut = uctx.Err() != nil || time.Since(began) >= timeout
		cancel()
		if uerr == nil {
			return DecideResult{Receipt: receipt, Via: DecidedViaUpdate}, nil
		}
		var nf *serviceerror.NotFound
		if errors.Is(uerr, warden.ErrApprovalInvalid) || errors.As(uerr, &nf) || ctx.Err() != nil {
			return DecideResult{}, uerr
		}
		if timedOut {
			uerr = fmt.Errorf("no worker completed the approve Update within %s: %w", timeout, uerr)
		}
	}
	pending, err := c.Pending(ctx, workflowID, PendingOptions{QueryTimeout: opts.QueryTimeout})
	if err != nil {
		return DecideResult{}, fmt.Errorf("decide %s on %s: the Update failed (%v) and the pending request could not be read to check a Signal: %w",
			d.RequestID, workflowID, uerr, err)
	}
	res := DecideResult{Via: DecidedViaSignal, UpdateErr: uerr, Source: pending.Source}
	i := slices.IndexFunc(pending.Requests, func(r warden.ApprovalRequest) bool { return r.RequestID == d.RequestID })
	if i < 0 && timedOut {
		// The Update was admitted and timed out waiting for a busy worker;
		// the request closed meanwhile, most likely by that very Update.
		// Sending the Signal now would only be refused as a repeat.
		return DecideResult{Via: DecidedViaUpdate, UpdateErr: uerr, Source: pending.Source,
			Receipt: warden.ApprovalReceipt{RequestID: d.RequestID, Status: warden.ApprovalStatusUnconfirmed}}, nil
	}
	if i < 0 {
		return DecideResult{}, fmt.Errorf("%w: %s has no pending request %s (per its %s) after the Update failed (%v): "+
			"it may have been decided or expired meanwhile; check with warden status", warden.ErrApprovalInvalid, workflowID, d.RequestID, pending.Source, uerr)
	}
	req := pending.Requests[i]
	approver := strings.TrimSpace(d.Approver)
	if slices.ContainsFunc(req.Approvals, func(a warden.ApprovalDecision) bool {
		return govern.NameForm(req.NameForm).Same(a.Approver, approver) && a.Decision == d.Decision
	}) {
		// The Update was applied after all (late): do not send it twice.
		return DecideResult{Via: DecidedViaUpdate, Source: pending.Source, UpdateErr: uerr,
			Receipt: warden.ApprovalReceipt{RequestID: d.RequestID, Status: warden.ApprovalStatusPending, Approvals: votes(req), Quorum: req.Quorum}}, nil
	}
	// The memo has no approver keys: the workflow verifies the signature.
	check := req
	check.Approvers.RequireSignature = false
	if err := govern.CheckDecision(check, d, time.Now()); err != nil {
		return DecideResult{}, err
	}
	if req.Approvers.RequireSignature && d.Signature == "" {
		return DecideResult{}, fmt.Errorf("%w: this call needs a signed approval: sign with `warden approve --key FILE` (Ed25519 over the request's SigningMessage)", warden.ErrApprovalInvalid)
	}
	if err := c.tc.SignalWorkflow(ctx, workflowID, "", warden.SignalApprove, d); err != nil {
		return DecideResult{}, fmt.Errorf("decide %s on %s: the Update failed (%v) and so did the Signal: %w", d.RequestID, workflowID, uerr, err)
	}
	res.Receipt = warden.ApprovalReceipt{RequestID: d.RequestID, Status: warden.ApprovalStatusSignalled, Approvals: votes(req), Quorum: req.Quorum}
	return res, nil
}

func votes(r warden.ApprovalRequest) int {
	n := 0
	for _, a := range r.Approvals {
		if a.Decision == warden.ApprovalApprove {
			n++
		}
	}
	return n
}
