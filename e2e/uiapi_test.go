package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
)

// uiAPI talks to the Web UI's HTTP API the way the browser does: a _csrf
// cookie from /api/v1/settings, echoed in X-CSRF-TOKEN.
type uiAPI struct {
	base   string
	client *http.Client
	csrf   string
}

func newUIAPI(t *testing.T, base string) *uiAPI {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	api := &uiAPI{base: base, client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	require.Eventually(t, func() bool {
		resp, err := api.client.Get(base + "/api/v1/settings")
		if err != nil {
			return false
		}
		resp.Body.Close()
		u, _ := url.Parse(base)
		for _, c := range jar.Cookies(u) {
			if c.Name == "_csrf" {
				api.csrf = c.Value
			}
		}
		return api.csrf != ""
	}, 30*time.Second, 200*time.Millisecond, "the Web UI gave no CSRF cookie")
	// The UI's gRPC connection to the frontend may still be in its dial
	// backoff from before the frontend was up: wait until it answers.
	require.Eventually(t, func() bool {
		resp, err := api.client.Get(base + "/api/v1/namespaces/default/workflows")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 250*time.Millisecond, "the Web UI cannot reach the Temporal frontend")
	return api
}

func payload(v any) map[string]any {
	b, _ := json.Marshal(v)
	return map[string]any{
		"metadata": map[string]string{"encoding": base64.StdEncoding.EncodeToString([]byte("json/plain"))},
		"data":     base64.StdEncoding.EncodeToString(b),
	}
}

func (api *uiAPI) post(t *testing.T, path string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, api.base+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-TOKEN", api.csrf)
	resp, err := api.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// update sends the approve Update with an arbitrary payload value.
func (api *uiAPI) update(t *testing.T, id, runID string, value any) (int, string) {
	return api.post(t, fmt.Sprintf("/api/v1/namespaces/default/workflows/%s/update/%s", url.PathEscape(id), warden.UpdateApprove), map[string]any{
		"workflowExecution": map[string]string{"runId": runID},
		"request": map[string]any{
			"meta":  map[string]string{"updateId": "ui-" + fmt.Sprint(time.Now().UnixNano()), "identity": "approver@example.com"},
			"input": map[string]any{"args": map[string]any{"payloads": []any{payload(value)}}},
		},
	})
}

func historyLength(t *testing.T, s *stack, id string) int {
	t.Helper()
	it := s.srv.Client().GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		_, err := it.Next()
		require.NoError(t, err)
		n++
	}
	return n
}

// TestUIRefusalsWriteNothingToHistory sends every kind of bad approval
// through the Web UI's HTTP API: each is refused with a message that says
// what is wrong, and the run's history does not change.
func TestUIRefusalsWriteNothingToHistory(t *testing.T) {
	s := startStack(t)
	api := newUIAPI(t, s.srv.UIAddress)
	id, p := s.startRefund(t, 0)
	desc, err := s.srv.Client().DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	runID := desc.WorkflowExecutionInfo.Execution.RunId
	before := historyLength(t, s, id)

	cases := []struct {
		name  string
		value any
		want  string
	}{
		{"unknown request", warden.ApprovalDecision{RequestID: "apr_000000000000000000000000", Decision: "approve", Approver: "alice"}, "no pending approval request"},
		{"self-approval", warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "dana"}, "may not approve"},
		{"approver not permitted", warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "mallory"}, "not among the approvers"},
		{"bad decision", warden.ApprovalDecision{RequestID: p.RequestID, Decision: "maybe", Approver: "alice"}, "decision must be"},
		{"no approver", warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve"}, "approver is required"},
		{"edited args not an object", map[string]any{"request_id": p.RequestID, "decision": "approve", "approver": "alice", "args": []int{1}}, "edited args must be a JSON object"},
		{"malformed payload", "approve it please", "not an approval decision"},
	}
	for _, c := range cases {
		status, body := api.update(t, id, runID, c.value)
		require.NotContains(t, body, `"success"`, "%s must be refused: %s", c.name, body)
		require.Contains(t, body, c.want, "%s: status %d body %s", c.name, status, body)
	}
	require.Equal(t, before, historyLength(t, s, id), "refused updates must not reach history")

	// The valid one is accepted, then the same decision again is refused.
	_, body := api.update(t, id, runID, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice", Reason: "ok"})
	require.Contains(t, body, `"success"`, body)
	res, err := s.client.Result(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	// The audit keeps the identity the UI sent with the Update.
	store, err := audit.Open(context.Background(), "", filepath.Join(s.cfg.DataDir, "audit.db"))
	require.NoError(t, err)
	defer store.Close()
	evs, err := store.Query(context.Background(), warden.AuditFilter{WorkflowID: id, Type: warden.EventApprovalIdentities})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	var ids []warden.ApprovalIdentity
	require.NoError(t, json.Unmarshal(evs[0].Result, &ids))
	require.Len(t, ids, 1)
	require.Equal(t, "approver@example.com", ids[0].TransportIdentity)
	// Nothing in the history, but every refusal on the record.
	refused, err := store.Query(context.Background(), warden.AuditFilter{WorkflowID: id, Type: warden.EventApprovalRefused})
	require.NoError(t, err)
	require.Len(t, refused, len(cases), "one approval_refused row per refused Update")
	for _, r := range refused {
		require.Contains(t, r.Message, "the refused Update is not in the history")
	}
	_, body = api.update(t, id, runID, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "bob"})
	require.NotContains(t, body, `"success"`, body)
}

// TestUIApprovalAfterExpiryIsRefused: once the request expired the call
// was rejected automatically, and a late approval changes nothing.
func TestUIApprovalAfterExpiryIsRefused(t *testing.T) {
	s := startStack(t)
	api := newUIAPI(t, s.srv.UIAddress)
	id, p := s.startRefund(t, 3*time.Second)
	res, err := s.client.Result(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, 1, res.ToolCalls["expired"])
	before := historyLength(t, s, id)
	_, body := api.update(t, id, "", warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice"})
	require.NotContains(t, body, `"success"`, body)
	require.Equal(t, before, historyLength(t, s, id))
}
