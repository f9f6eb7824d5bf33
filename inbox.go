package warden

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
)

// InboxFilter narrows the approver inbox. Zero fields do not filter.
type InboxFilter struct {
	Tenant string
	Risk   Risk
}

// InboxQuery is the Temporal visibility query of the approver inbox.
func InboxQuery(f InboxFilter) string {
	q := fmt.Sprintf("%s=%q", SearchAttrStatus, SearchStatus(StatusAwaitingApproval))
	if f.Tenant != "" {
		q += fmt.Sprintf(" AND %s=%q", SearchAttrTenant, f.Tenant)
	}
	if f.Risk != "" {
		q += fmt.Sprintf(" AND %s=%q", SearchAttrRisk, string(f.Risk))
	}
	return q
}

// InboxURL is the Temporal Web UI's workflow list filtered to the approver
// inbox, for example http://127.0.0.1:8233/namespaces/default/workflows?query=...
func InboxURL(uiBase, namespace string, f InboxFilter) string {
	return strings.TrimRight(uiBase, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows?query=" + url.QueryEscape(InboxQuery(f))
}

// InboxEntry is one run waiting for approval.
type InboxEntry struct {
	WorkflowID  string    `json:"workflow_id"`
	RunID       string    `json:"run_id"`
	Tenant      string    `json:"tenant"`
	Requester   string    `json:"requester"`
	Risk        Risk      `json:"risk"`
	PendingTool string    `json:"pending_tool"`
	StartedAt   time.Time `json:"started_at"`
	// Pending are the run's pending requests from its memo (no worker
	// needed); empty for runs started before the memo existed.
	Pending []PendingApproval `json:"pending,omitempty"`
}

// Inbox lists the runs waiting for approval, newest first, as the Web UI's
// inbox URL shows them, each with its pending requests from the memo. It
// reads only the server's visibility store, never a worker. Visibility is eventually consistent: a run that
// started waiting a moment ago may appear a moment later.
func (c *Client) Inbox(ctx context.Context, f InboxFilter) ([]InboxEntry, error) {
	out := []InboxEntry{}
	var token []byte
	for {
		resp, err := c.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: InboxQuery(f), NextPageToken: token})
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
				case SearchAttrTenant:
					e.Tenant = v
				case SearchAttrRequester:
					e.Requester = v
				case SearchAttrRisk:
					e.Risk = Risk(v)
				case SearchAttrPendingTool:
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
