package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/wardenhq/warden"
)

// Client is the thin API product backends use to start governed runs and
// act on them. It wraps a Temporal client the caller dials and owns.
type Client struct {
	tc        tclient.Client
	taskQueue string
}

// New returns a Client that starts runs on taskQueue (empty means [warden.DefaultTaskQueue]).
func New(tc tclient.Client, taskQueue string) *Client {
	if taskQueue == "" {
		taskQueue = warden.DefaultTaskQueue
	}
	return &Client{tc: tc, taskQueue: taskQueue}
}

// StartOptions tune Start.
type StartOptions struct {
	// ID is the workflow ID: the caller's idempotency key. Starting again
	// with an ID already used returns the run under it and starts nothing,
	// whether that run is still open (the ID conflict policy is
	// use-existing) or has closed, however it ended: completed, failed,
	// cancelled or terminated (the ID reuse policy is reject-duplicate,
	// and the SDK returns the closed run instead of an error). The second
	// request's RunRequest is not compared with the first. To run the
	// same goal again, use a new ID.
	//
	// The guarantee lasts while the server keeps the run: once the
	// namespace's retention period has removed a closed run, its ID is free
	// and starts a new run. RunHandle.RunID is the run the server names:
	// the first one, or after the run continued as new, its chain's
	// current (or, once closed, last) run; the other methods take the
	// workflow ID and need no run ID.
	//
	// Empty means a new random ID "run-<tenant>-<hex>".
	ID string
}

// RunHandle identifies a started run.
type RunHandle struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// Start validates req and starts an AgentRun workflow, or returns the run
// already started under opts.ID (see StartOptions.ID).
func (c *Client) Start(ctx context.Context, req warden.RunRequest, opts StartOptions) (RunHandle, error) {
	if err := req.Validate(); err != nil {
		return RunHandle{}, err
	}
	id := opts.ID
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = "run-" + slug(req.Tenant) + "-" + hex.EncodeToString(b[:])
	}
	summary := fmt.Sprintf("%s · %s: %s", req.Tenant, req.Requester, firstLine(req.Goal, 160))
	details := fmt.Sprintf("**Tenant:** %s\n\n**Requester:** %s\n\n**Goal:**\n\n%s\n", req.Tenant, req.Requester, req.Goal)
	run, err := c.tc.ExecuteWorkflow(ctx, tclient.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                c.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// With false (the default, said here because Start depends on it)
		// the SDK answers an ID the policies refuse with the run holding
		// it, not an error.
		WorkflowExecutionErrorWhenAlreadyStarted: false,
		StaticSummary:                            summary,
		StaticDetails:                            details,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword(warden.SearchAttrStatus).ValueSet(warden.SearchStatus(warden.StatusRunning)),
			temporal.NewSearchAttributeKeyKeyword(warden.SearchAttrTenant).ValueSet(req.Tenant),
			temporal.NewSearchAttributeKeyKeyword(warden.SearchAttrRequester).ValueSet(req.Requester),
		),
	}, warden.WorkflowAgentRun, req)
	if err != nil {
		return RunHandle{}, fmt.Errorf("start run %s: %w", id, err)
	}
	return RunHandle{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// Status returns where the run stands.
func (c *Client) Status(ctx context.Context, workflowID string) (warden.RunState, error) {
	var s warden.RunState
	v, err := c.tc.QueryWorkflow(ctx, workflowID, "", warden.QueryStatus)
	if err != nil {
		return s, fmt.Errorf("status of %s: %w", workflowID, err)
	}
	if err := v.Get(&s); err != nil {
		return s, fmt.Errorf("status of %s: %w", workflowID, err)
	}
	return s, nil
}

// PendingApprovals lists the run's tool calls waiting for approval: from
// the live query, or from the run's memo when no worker answers it in
// DefaultQueryTimeout (requests without Args and Reasons then). Pending
// says which.
func (c *Client) PendingApprovals(ctx context.Context, workflowID string) ([]warden.ApprovalRequest, error) {
	res, err := c.Pending(ctx, workflowID, PendingOptions{})
	return res.Requests, err
}

// Decide sends an approval decision through the approve Update and waits
// for the workflow to apply it. A refused decision returns an error wrapping
// [warden.ErrApprovalInvalid] with the workflow's reason.
func (c *Client) Decide(ctx context.Context, workflowID string, d warden.ApprovalDecision) (warden.ApprovalReceipt, error) {
	var receipt warden.ApprovalReceipt
	h, err := c.tc.UpdateWorkflow(ctx, tclient.UpdateWorkflowOptions{
		WorkflowID:   workflowID,
		UpdateName:   warden.UpdateApprove,
		Args:         []any{d},
		WaitForStage: tclient.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &receipt)
	}
	if err != nil {
		// Only the workflow's explicit refusal is ErrApprovalInvalid; workers
		// older than ErrTypeApprovalRefused refused with an untyped error
		// whose message starts with ErrApprovalInvalid's text.
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && (appErr.Type() == warden.ErrTypeApprovalRefused || strings.HasPrefix(appErr.Message(), warden.ErrApprovalInvalid.Error()+": ")) {
			return receipt, fmt.Errorf("%w: %s", warden.ErrApprovalInvalid, strings.TrimPrefix(appErr.Message(), warden.ErrApprovalInvalid.Error()+": "))
		}
		return receipt, fmt.Errorf("decide %s on %s: %w", d.RequestID, workflowID, err)
	}
	return receipt, nil
}

// Result waits for the run to end and returns its result. A cancelled run
// yields [warden.StatusCancelled] and no error.
func (c *Client) Result(ctx context.Context, workflowID string) (warden.RunResult, error) {
	var res warden.RunResult
	err := c.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &res)
	var ce *temporal.CanceledError
	if errors.As(err, &ce) {
		return warden.RunResult{Status: warden.StatusCancelled, Error: "cancelled"}, nil
	}
	if err != nil {
		return res, fmt.Errorf("result of %s: %w", workflowID, err)
	}
	return res, nil
}

// Cancel asks the run to stop; it records the cancellation and ends.
func (c *Client) Cancel(ctx context.Context, workflowID string) error {
	if err := c.tc.CancelWorkflow(ctx, workflowID, ""); err != nil {
		return fmt.Errorf("cancel %s: %w", workflowID, err)
	}
	return nil
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 32 {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}

func firstLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}
