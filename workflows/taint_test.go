package workflows_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/llm"
	"github.com/wardenhq/warden/worker"
)

// TestLaterCallOfATurnIsReauthorizedWhenTheTaintGrew: an answer
// [shell, http_get] is authorised with the taint of the turn's start, so
// http_get is allowed; once shell's output has tainted the run, the
// decision for http_get is taken again with the new taint, and what it
// now needs (an approval) is asked for — the call is not refused at
// execution with nobody asked, and Execute sees the very taint the
// decision it enforces was taken with.
func TestLaterCallOfATurnIsReauthorizedWhenTheTaintGrew(t *testing.T) {
	t.Parallel()
	site, _, policyDir := grantedSite(t, map[string]string{"warden/groups/data.json": `{"approvers": ["alice"]}`})

	h := newHarnessWith(t, worker.Config{PolicyDir: policyDir})
	require.NoError(t, h.deps.Scripted.Add(llm.Scenario{Name: "shell_then_fetch", Turns: []llm.Turn{
		{ToolCalls: []llm.ScriptedCall{
			{Name: "shell", Args: json.RawMessage(`{"argv": ["echo", "untrusted text"]}`)},
			{Name: "http_get", Args: json.RawMessage(fmt.Sprintf(`{"url": "%s/hello"}`, site.URL))},
		}},
		{Content: "Done:\n{{tool_results}}"},
	}}))
	var pending []warden.ApprovalRequest
	var approved *outcome
	h.env.RegisterDelayedCallback(func() {
		pending = h.pending()
		if len(pending) == 1 {
			approved = h.update(warden.ApprovalDecision{RequestID: pending[0].RequestID, Decision: "approve", Approver: "alice", Reason: "checked the host"})
		}
	}, time.Minute)
	req := request("shell_then_fetch")
	req.ApprovalTimeout = time.Hour
	res, err := h.run(req)
	require.NoError(t, err)
	require.Len(t, pending, 1, "the re-decided http_get waits for a person")
	require.Equal(t, "http_get", pending[0].Tool)
	require.Contains(t, strings.Join(pending[0].Reasons, "; "), "untrusted content (tool:shell)")
	require.NotNil(t, approved)
	require.NoError(t, approved.err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, map[string]int{"executed": 2}, res.ToolCalls)
	require.Contains(t, res.Answer, "hello from the granted host")

	var decisions []string
	for _, e := range h.events() {
		if e.Tool != "http_get" {
			continue
		}
		switch e.Type {
		case warden.EventPolicyDecided:
			decisions = append(decisions, e.Decision)
		case warden.EventToolFailed:
			t.Fatalf("http_get failed or was refused: %s", e.Message)
		}
	}
	require.Equal(t, []string{warden.VerdictAllow, warden.VerdictRequireApproval}, decisions,
		"allowed at the turn's start, then re-decided with the grown taint; both on the record")
}
