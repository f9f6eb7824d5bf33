package telemetry_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/telemetry"
)

// metricNames lists the families the worker's /metrics serves, with the
// series suffixes histograms add, each with its label names: Warden's own
// collectors (from their descriptions) and the OpenTelemetry GenAI metrics
// (recorded once through the same bridge the worker uses, then gathered).
func metricNames(t *testing.T) map[string]map[string]bool {
	t.Helper()
	m := telemetry.NewMetrics()
	names := map[string]map[string]bool{}
	add := func(name string, histogram bool, labels []string) {
		set := map[string]bool{}
		for _, l := range labels {
			set[l] = true
		}
		names[name] = set
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = set
			}
		}
	}

	descs := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range []prometheus.Collector{m.RunsStarted, m.RunsFinished, m.ToolCalls, m.ApprovalsDecided, m.ApprovalWait,
			m.ModelLatency, m.ModelTokens, m.ModelCost, m.PolicyLatency, m.SandboxDuration, m.AuditWriteLatency, m.AuditEvents} {
			c.Describe(descs)
		}
		close(descs)
	}()
	desc := regexp.MustCompile(`fqName: "([a-z_]+)".*variableLabels: \{([a-z_,]*)\}`)
	for d := range descs {
		sm := desc.FindStringSubmatch(d.String())
		require.NotNil(t, sm, d.String())
		add(sm[1], true, strings.Split(sm[2], ","))
	}

	reader, err := telemetry.NewPrometheusReader(m.Registry)
	require.NoError(t, err)
	mp := telemetry.NewMeterProvider(context.Background(), reader)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	g, err := telemetry.NewGenAI(mp)
	require.NoError(t, err)
	ctx := context.Background()
	g.RecordModelCall(ctx, telemetry.ModelCall{Provider: "openai", RequestModel: "m", ResponseModel: "m-1", InputTokens: 3, OutputTokens: 2, Seconds: 0.5})
	g.RecordModelCall(ctx, telemetry.ModelCall{Provider: "openai", RequestModel: "m", Seconds: 0.1, ErrorType: "timeout"})
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	genai := 0
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "gen_ai_") {
			continue
		}
		genai++
		var labels []string
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		add(f.GetName(), f.GetType().String() == "HISTOGRAM", labels)
	}
	require.Equal(t, 2, genai, "the GenAI token usage and duration families")
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
	ref := regexp.MustCompile(`\b(?:warden|gen_ai)_[a-z_]+`)
	by := regexp.MustCompile(`\bby \(([a-z_, ]+)\)`)
	matchers := regexp.MustCompile(`\{[^}]*\}`)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			// Metric names, not the label names of groupings and matchers.
			refs := ref.FindAllString(matchers.ReplaceAllString(by.ReplaceAllString(tg.Expr, ""), ""), -1)
			require.NotEmpty(t, refs, "%s: %s", p.Title, tg.Expr)
			labels := map[string]bool{"le": true}
			for _, r := range refs {
				require.NotNil(t, names[r], "panel %q queries %s, which the worker does not export", p.Title, r)
				for l := range names[r] {
					labels[l] = true
				}
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(r, "_bucket"), "_count"), "_sum")] = true
			}
			// Grouping by a label the series do not have draws one line
			// with the label empty: the panel would look fine and say nothing.
			for _, g := range by.FindAllStringSubmatch(tg.Expr, -1) {
				for _, l := range strings.Split(g[1], ",") {
					l = strings.TrimSpace(l)
					require.True(t, labels[l], "panel %q groups by %s, which none of %v has", p.Title, l, refs)
				}
			}
		}
	}
	// The lists: runs by status, tool calls by tool and decision,
	// approval wait, model latency, tokens and cost, sandbox duration,
	// audit write latency, and the GenAI token usage and call duration —
	// each on the dashboard.
	for _, want := range []string{"warden_runs_finished_total", "warden_tool_calls_total", "warden_approval_wait_seconds",
		"warden_model_request_duration_seconds", "warden_model_tokens_total", "warden_model_cost_usd_total",
		"warden_sandbox_run_duration_seconds", "warden_audit_write_duration_seconds",
		"gen_ai_client_token_usage", "gen_ai_client_operation_duration_seconds"} {
		require.True(t, used[want], "the dashboard does not show %s", want)
	}
}
