package client

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/wardenhq/warden"
)

// InboxEntry is one run waiting for approval.
type InboxEntry struct {
	WorkflowID  string      `json:"workflow_id"`
	RunID       string      `json:"run_id"`
	Tenant      string      `json:"tenant"`
	Requester   string      `json:"requester"`
	Risk        warden.Risk `json:"risk"`
	PendingTool string      `json:"pending_tool"`
	StartedAt   time.Time   `json:"started_at"`
	// Pending are the run's pending requests from its memo (no worker
	// needed); empty for runs started before the memo existed.
	Pending []warden.PendingApproval `json:"pending,omitempty"`
}

// Inbox lists the runs waiting for approval, newest first, as the Web UI's
// inbox URL shows them, each with its pending requests from the memo. It
// reads only the server's visibility store, never a worker. Visibility is eventually consistent: a run that
// started waiting a moment ago may appear a moment later.
func (c *Client) Inbox(ctx context.Context, f warden.InboxFilter) ([]InboxEntry, error) {
	out := []InboxEntry{}
	var token []byte
	for {
		resp, err := c.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: warden.InboxQuery(f), NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list runs awaiting approval: %w", err)
		}
		for _, ex := range resp.GetExecutions() {
			e := InboxEntry{
				WorkflowID: ex.GetExecution().GetWorkflowId(),
				RunID:      ex.GetExecution().GetRunId(),
				StartedAt:  ex.GetStartTime().AsTime(),
			}
			if ps, err := PendingFromMemo(ex.GetMemo()); err == nil {
				e.Pending = ps
			}
			for name, p := range ex.GetSearchAttributes().GetIndexedFields() {
				var v string
				if converter.GetDefaultDataConverter().FromPayload(p, &v) != nil {
					continue
				}
				switch name {
				case warden.SearchAttrTenant:
					e.Tenant = v
				case warden.SearchAttrRequester:
					e.Requester = v
				case warden.SearchAttrRisk:
					e.Risk = warden.Risk(v)
				case warden.SearchAttrPendingTool:
					e.PendingTool = v
				}
			}
			out = append(out, e)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}
