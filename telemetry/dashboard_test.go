package telemetry_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/telemetry"
)

// metricNames lists the families NewMetrics registers, with the series
// suffixes histograms add.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	m := telemetry.NewMetrics()
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range []prometheus.Collector{m.RunsStarted, m.RunsFinished, m.ToolCalls, m.ApprovalsDecided, m.ApprovalWait,
			m.ModelLatency, m.ModelTokens, m.ModelCost, m.PolicyLatency, m.SandboxDuration, m.AuditWriteLatency, m.AuditEvents} {
			c.Describe(ch)
		}
		close(ch)
	}()
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	names := map[string]bool{}
	for d := range ch {
		n := fq.FindStringSubmatch(d.String())[1]
		names[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			names[n+s] = true
		}
	}
	return names
}

func TestGrafanaDashboardQueriesExistingMetrics(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/warden.json")
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &dash))
	require.NotEmpty(t, dash.Panels)
	names := metricNames(t)
	used := map[string]bool{}
	ref := regexp.MustCompile(`\bwarden_[a-z_]+`)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			refs := ref.FindAllString(tg.Expr, -1)
			require.NotEmpty(t, refs, "%s: %s", p.Title, tg.Expr)
			for _, r := range refs {
				require.True(t, names[r], "panel %q queries %s, which the worker does not export", p.Title, r)
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(r, "_bucket"), "_count"), "_sum")] = true
			}
		}
	}
	// The list: runs by status, tool calls by tool and decision,
	// approval wait, model latency, tokens and cost, sandbox duration,
	// audit write latency — each on the dashboard.
	for _, want := range []string{"warden_runs_finished_total", "warden_tool_calls_total", "warden_approval_wait_seconds",
		"warden_model_request_duration_seconds", "warden_model_tokens_total", "warden_model_cost_usd_total",
		"warden_sandbox_run_duration_seconds", "warden_audit_write_duration_seconds"} {
		require.True(t, used[want], "the dashboard does not show %s", want)
	}
}
