package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/wardenhq/warden"
	wclient "github.com/wardenhq/warden/client"
)

// A question the scripted model answers without tools, and a refund that
// the default policy sends for approval. With a real model, Model names it
// (or stays empty for the worker's default).
var (
	question = warden.RunRequest{Tenant: "acme", Requester: "dana", Goal: "What is the answer?", Model: "scripted/answer"}
	refund   = warden.RunRequest{Tenant: "acme", Requester: "dana", Goal: "Refund order A-1", Model: "scripted/refund"}
)

// A product backend in ten lines: dial Temporal, start a governed run, wait
// for its result. (Not run by go test: it dials a fixed address.)
func Example() {
	tc, err := client.Dial(client.Options{HostPort: "127.0.0.1:7233"})
	if err != nil {
		log.Fatal(err)
	}
	defer tc.Close()
	c := wclient.New(tc, "")
	ctx := context.Background()
	req := warden.RunRequest{Tenant: "acme", Requester: "dana", Goal: "Refund order 1234: the parcel was lost"}
	h, err := c.Start(ctx, req, wclient.StartOptions{ID: "refund-order-1234"})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Result(ctx, h.WorkflowID) // blocks while approvers decide
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, res.Answer)
}

// List the runs waiting for approval across tenants (the approver inbox).
// Visibility is eventually consistent, so a run that just started waiting
// may take a moment to appear.
func ExampleClient_Inbox() {
	ctx := context.Background()
	c := wclient.New(temporalClient, "")
	h, err := c.Start(ctx, warden.RunRequest{Tenant: "initech", Requester: "peter", Goal: "Refund order A-1", Model: "scripted/refund"},
		wclient.StartOptions{ID: "ticket-1008"})
	if err != nil {
		log.Fatal(err)
	}
	waitForApproval(ctx, c, h.WorkflowID)
	var inbox []wclient.InboxEntry
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		inbox, err = c.Inbox(ctx, warden.InboxFilter{Tenant: "initech"})
		if err == nil && len(inbox) == 1 && inbox[0].PendingTool != "" {
			break
		}
	}
	for _, e := range inbox {
		fmt.Println(e.WorkflowID, e.Tenant, e.Requester, e.PendingTool)
	}
	fmt.Println(warden.InboxURL("http://localhost:8233", "default", warden.InboxFilter{Tenant: "initech"}))
	_ = c.Cancel(ctx, h.WorkflowID)
	// Output:
	// ticket-1008 initech peter issue_refund
	// http://localhost:8233/namespaces/default/workflows?query=WardenStatus%3D%22AwaitingApproval%22+AND+ExecutionStatus%3D%22Running%22+AND+WardenTenant%3D%22initech%22
}

// Start a run under an ID the backend chooses (an order number, a ticket
// ID): starting again with the same ID returns the run under it, open or
// closed, so a retried HTTP request never starts a second agent, even after
// the first has finished.
func ExampleClient_Start() {
	ctx := context.Background()
	c := wclient.New(temporalClient, "") // "" = the default task queue, "warden"

	first, err := c.Start(ctx, question, wclient.StartOptions{ID: "ticket-1001"})
	if err != nil {
		log.Fatal(err)
	}
	again, err := c.Start(ctx, question, wclient.StartOptions{ID: "ticket-1001"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Result(ctx, first.WorkflowID); err != nil {
		log.Fatal(err)
	}
	afterClose, err := c.Start(ctx, question, wclient.StartOptions{ID: "ticket-1001"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.WorkflowID, again.RunID == first.RunID, afterClose.RunID == first.RunID)
	// Output: ticket-1001 true true
}

// Wait for a run to end and read its result.
func ExampleClient_Result() {
	ctx := context.Background()
	c := wclient.New(temporalClient, "")
	h, err := c.Start(ctx, question, wclient.StartOptions{ID: "ticket-1002"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := c.Result(ctx, h.WorkflowID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, res.Steps)
	fmt.Println(res.Answer)
	// Output:
	// completed 1
	// [scripted model] The answer is 42.
}

// Ask where a run stands while it is alive.
func ExampleClient_Status() {
	ctx := context.Background()
	c := wclient.New(temporalClient, "")
	h, err := c.Start(ctx, refund, wclient.StartOptions{ID: "ticket-1003"})
	if err != nil {
		log.Fatal(err)
	}
	waitForApproval(ctx, c, h.WorkflowID)
	st, err := c.Status(ctx, h.WorkflowID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Status, st.Tenant, st.Requester, st.PendingApprovals)
	_ = c.Cancel(ctx, h.WorkflowID)
	// Output: awaiting_approval acme dana 1
}

// List what a run waits for: each pending tool call with its arguments,
// risk and who may approve it.
func ExampleClient_PendingApprovals() {
	ctx := context.Background()
	c := wclient.New(temporalClient, "")
	h, err := c.Start(ctx, refund, wclient.StartOptions{ID: "ticket-1004"})
	if err != nil {
		log.Fatal(err)
	}
	pending := waitForApproval(ctx, c, h.WorkflowID)
	p := pending[0]
	fmt.Println(len(pending), p.Tool, p.Requester, string(p.Args))
	_ = c.Cancel(ctx, h.WorkflowID)
	// Output: 1 issue_refund dana {"order_id":"A-1","amount_cents":1999,"currency":"EUR","reason":"damaged"}
}

// Approve a pending call, then wait for the run to finish. The approver is
// checked against the policy's approver set; the requester may not approve
// their own run.
func ExampleClient_Decide_approve() {
	ctx := context.Background()
	c := wclient.New(temporalClient, "")
	h, err := c.Start(ctx, refund, wclient.StartOptions{ID: "ticket-1005"})
	if err != nil {
		log.Fatal(err)
	}
	p := waitForApproval(ctx, c, h.WorkflowID)[0]

	_, err = c.Decide(ctx, h.WorkflowID, warden.ApprovalDecision{RequestID: p.RequestID, Decision: warden.ApprovalApprove, Approver: "dana"})
	fmt.Println("self-approval refused:", errors.Is(err, warden.ErrApprovalInvalid))

	receipt, err := c.Decide(ctx, h.WorkflowID, warden.ApprovalDecision{
		RequestID: p.RequestID, Decision: warden.ApprovalApprove, Approver: "alice", Reason: "customer verified",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(receipt.Status)
	res, err := c.Result(ctx, h.WorkflowID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, res.ToolCalls["executed"])
	// Output:
	// self-approval refused: true
	// approved
	// completed 1
}

// Reject a pending call: the tool does not run, the model is told, and the
// run goes on.
func ExampleClient_Decide_reject() {
	ctx := context.Background()
	c := wclient.New(temporalClient, "")
	h, err := c.Start(ctx, refund, wclient.StartOptions{ID: "ticket-1006"})
	if err != nil {
		log.Fatal(err)
	}
	p := waitForApproval(ctx, c, h.WorkflowID)[0]
	receipt, err := c.Decide(ctx, h.WorkflowID, warden.ApprovalDecision{
		RequestID: p.RequestID, Decision: warden.ApprovalReject, Approver: "alice", Reason: "order already refunded",
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Result(ctx, h.WorkflowID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(receipt.Status, res.ToolCalls["executed"], res.ToolCalls["rejected"])
	// Output: rejected 0 1
}

// Cancel a run: it records the cancellation in the audit log and ends;
// Result reports it as cancelled, not as an error.
func ExampleClient_Cancel() {
	ctx := context.Background()
	c := wclient.New(temporalClient, "")
	h, err := c.Start(ctx, refund, wclient.StartOptions{ID: "ticket-1007"})
	if err != nil {
		log.Fatal(err)
	}
	waitForApproval(ctx, c, h.WorkflowID)
	if err := c.Cancel(ctx, h.WorkflowID); err != nil {
		log.Fatal(err)
	}
	res, err := c.Result(ctx, h.WorkflowID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status)
	// Output: cancelled
}

// waitForApproval polls until the run asks for an approval. A backend
// usually does not poll: approvers work from the inbox (Client.Inbox, or
// the Web UI link from InboxURL) and the backend waits in Result.
func waitForApproval(ctx context.Context, c *wclient.Client, workflowID string) []warden.ApprovalRequest {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		pending, err := c.PendingApprovals(ctx, workflowID)
		if err == nil && len(pending) > 0 {
			return pending
		}
		select {
		case <-ctx.Done():
			log.Fatalf("no approval request on %s: %v", workflowID, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
