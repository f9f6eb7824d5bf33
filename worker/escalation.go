package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wardenhq/warden"
)

// webhook posts escalations of pending approvals as JSON to a URL (a chat
// or paging integration). It implements activities.Escalations.
type webhook struct {
	url    string
	client *http.Client
}

// Escalation is the JSON body the escalation webhook receives.
type Escalation struct {
	Event      string                 `json:"event"`
	Tenant     string                 `json:"tenant"`
	WorkflowID string                 `json:"workflow_id"`
	Request    warden.ApprovalRequest `json:"request"`
}

func (w webhook) Escalate(ctx context.Context, tenant, workflowID string, req warden.ApprovalRequest) error {
	body, err := json.Marshal(Escalation{Event: "approval_escalated", Tenant: tenant, WorkflowID: workflowID, Request: req})
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("escalation webhook: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(hreq)
	if err != nil {
		return fmt.Errorf("escalation webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("escalation webhook %s answered %s", w.url, resp.Status)
	}
	return nil
}

func newWebhook(url string) webhook {
	return webhook{url: url, client: &http.Client{Timeout: 10 * time.Second}}
}
