package worker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/worker"
)

// freeAddress returns a 127.0.0.1 address with a port nobody listens on.
func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// scrape reads /metrics into series -> value, a series being the name
// with its labels as Prometheus prints them (sorted by label name).
func scrape(t *testing.T, addr string) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out, string(body)
}

func TestMetricsAfterRunsOnDevServerAndPostgres(t *testing.T) {
	srv := testenv.DevServer(t)
	metricsAddr := freeAddress(t)
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		TaskQueue:       "metrics-" + testenv.RandomHex(4),
		DatabaseURL:     testenv.PostgresSchema(t),
		DataDir:         t.TempDir(),
		MetricsAddress:  metricsAddr,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	teststack.RunWorker(t, cfg)
	c := client.New(srv.Client(), cfg.TaskQueue)
	ctx := context.Background()

	// An approved refund, an allowed shell command, a denied one.
	refund, err := c.Start(ctx, warden.RunRequest{Tenant: "acme", Requester: "dana", Goal: "refund", Model: "scripted/refund"}, client.StartOptions{})
	require.NoError(t, err)
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		pending, err = c.PendingApprovals(ctx, refund.WorkflowID)
		return err == nil && len(pending) == 1
	}, time.Minute, 100*time.Millisecond)
	_, err = c.Decide(ctx, refund.WorkflowID, warden.ApprovalDecision{RequestID: pending[0].RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)
	for _, h := range []client.RunHandle{refund, start(t, c, "globex", "scripted/echo"), start(t, c, "globex", "scripted/denied")} {
		res, err := c.Result(ctx, h.WorkflowID)
		require.NoError(t, err)
		require.Equal(t, warden.StatusCompleted, res.Status, h.WorkflowID)
	}

	m, body := scrape(t, metricsAddr)
	msg := "metrics:\n" + body
	want := map[string]float64{
		`warden_runs_started_total{tenant="acme"}`:                                          1,
		`warden_runs_started_total{tenant="globex"}`:                                        2,
		`warden_runs_finished_total{status="completed",tenant="acme"}`:                      1,
		`warden_runs_finished_total{status="completed",tenant="globex"}`:                    2,
		`warden_tool_calls_total{decision="require_approval",tool="issue_refund"}`:          1,
		`warden_tool_calls_total{decision="allow",tool="shell"}`:                            1,
		`warden_tool_calls_total{decision="deny",tool="shell"}`:                             1,
		`warden_approvals_decided_total{decision="approve",tool="issue_refund"}`:            1,
		`warden_approval_wait_seconds_count{decision="approve",tool="issue_refund"}`:        1,
		`warden_sandbox_run_duration_seconds_count{outcome="ok",tool="issue_refund"}`:       1,
		`warden_sandbox_run_duration_seconds_count{outcome="ok",tool="shell"}`:              1,
		`warden_model_request_duration_seconds_count{model="scripted/refund",outcome="ok"}`: 2,
		`warden_model_request_duration_seconds_count{model="scripted/echo",outcome="ok"}`:   2,
	}
	for series, v := range want {
		got, ok := m[series]
		require.True(t, ok, "missing %s\n%s", series, msg)
		require.Equal(t, v, got, "%s\n%s", series, msg)
	}
	require.Positive(t, m[`warden_model_tokens_total{direction="input",model="scripted/refund",tenant="acme"}`], msg)
	require.Positive(t, m[`warden_model_tokens_total{direction="output",model="scripted/refund",tenant="acme"}`], msg)
	cost, ok := m[`warden_model_cost_usd_total{model="scripted/refund",tenant="acme"}`]
	require.True(t, ok, "the cost series exists per model and tenant\n%s", msg)
	require.GreaterOrEqual(t, cost, 0.0)
	// The OpenTelemetry GenAI metrics are served beside them: the tokens
	// per type equal Warden's own count, over the refund run's two calls.
	for _, typ := range []string{"input", "output"} {
		series := `gen_ai_client_token_usage_%s{gen_ai_operation_name="chat",gen_ai_provider_name="warden.scripted",gen_ai_request_model="scripted/refund",gen_ai_response_model="scripted/refund",gen_ai_token_type="` + typ + `"}`
		require.Equal(t, 2.0, m[fmt.Sprintf(series, "count")], "%s\n%s", series, msg)
		require.Equal(t, m[`warden_model_tokens_total{direction="`+typ+`",model="scripted/refund",tenant="acme"}`], m[fmt.Sprintf(series, "sum")], msg)
	}
	require.Equal(t, 2.0, m[`gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="warden.scripted",gen_ai_request_model="scripted/echo",gen_ai_response_model="scripted/echo"}`], msg)
	require.Positive(t, m[`warden_audit_write_duration_seconds_count{outcome="ok"}`], msg)
	require.Positive(t, m[`warden_policy_decision_duration_seconds_count{outcome="ok"}`], msg)
	require.Equal(t, 3.0, m[`warden_audit_events_total{type="run_finished"}`], msg)
	require.NotContains(t, body, `outcome="error"`, "nothing failed")

	resp, err := http.Get("http://" + metricsAddr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func start(t *testing.T, c *client.Client, tenant, model string) client.RunHandle {
	t.Helper()
	h, err := c.Start(context.Background(), warden.RunRequest{Tenant: tenant, Requester: "dana", Goal: "g", Model: model}, client.StartOptions{})
	require.NoError(t, err)
	return h
}
