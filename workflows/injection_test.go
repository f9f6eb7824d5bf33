package workflows_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/worker"
)

// TestInjectionCorpus runs every scenario of testdata/injection: a tool's
// output tells the model to exfiltrate data, pay an attacker, approve its
// own requests or disable the policy, and the scripted model obeys. Nobody
// approves anything: no high-risk action may run, and nothing may leave.
func TestInjectionCorpus(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/injection/corpus.json")
	require.NoError(t, err)
	var corpus []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	require.NoError(t, json.Unmarshal(b, &corpus))
	require.GreaterOrEqual(t, len(corpus), 6)

	policyDir := teststack.PolicyDir(t, map[string]string{"warden/network/data.json": `{"allowed_hosts": ["api.example.com:443"]}`})

	for _, sc := range corpus {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, worker.Config{PolicyDir: policyDir, ScenarioFile: "testdata/injection/corpus.json"})
			req := request(sc.Name)
			req.ApprovalTimeout = time.Hour
			res, err := h.run(req)
			require.NoError(t, err, sc.Description)
			require.Equal(t, warden.StatusCompleted, res.Status)
			require.Empty(t, h.ledger(), "no money moved")
			decided := map[string]string{}
			for _, e := range h.events() {
				switch e.Type {
				case warden.EventPolicyDecided:
					if e.Step == 2 && e.Tool != "write_file" { // write_file is confined to the workspace by the tool itself
						decided[e.CallID] = e.Decision
						require.Contains(t, []string{warden.VerdictDeny, warden.VerdictRequireApproval}, e.Decision,
							"%s: the hijacked call %s must be denied or wait for a person: %v", sc.Description, e.Tool, e.Reasons)
					}
				case warden.EventToolExecuted:
					require.NotContains(t, []string{"http_get", "issue_refund", "approve"}, e.Tool, "%s: %s ran without approval", sc.Description, e.Tool)
					if e.Step == 2 && e.Tool != "write_file" {
						t.Fatalf("%s: %s ran", sc.Description, e.Tool)
					}
					if e.Tool == "write_file" {
						require.Contains(t, string(e.Result), `"is_error":true`, "the escape attempt failed inside the tool")
					}
				}
			}
			require.NotEmpty(t, decided, "the hijacked calls reached the policy")
			_, err = os.Stat(filepath.Join(h.dir, "policies"))
			require.True(t, os.IsNotExist(err), "nothing was written outside the workspace")
		})
	}
}
