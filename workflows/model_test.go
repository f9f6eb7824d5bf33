package workflows_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/worker"
)

// TestMoneyBudgetIsExactAcrossRetries: a USD cap ends the run before it is
// exceeded; the spend equals the sum of the audited calls although one
// Plan attempt was retried after the model had answered.
func TestMoneyBudgetIsExactAcrossRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	flaky := &flakyAudit{Audit: h.deps.Activities.Audit, typ: warden.EventModelCalled, failures: 1}
	h.deps.Activities.Audit = flaky
	req := request("loop")
	req.Budget.MaxCostUSD = 0.01
	res, err := h.run(req)
	require.NoError(t, err)
	require.Equal(t, warden.StatusBudgetExhausted, res.Status)
	require.Contains(t, res.Error, "money budget exhausted")
	require.Positive(t, res.Usage.CostMicroUSD)
	require.LessOrEqual(t, res.Usage.CostMicroUSD, warden.MicroUSD(0.01), "the cap is never exceeded")
	require.Greater(t, res.Steps, 2)
	require.Zero(t, flaky.failures, "a Plan attempt failed after the model answered")

	var audited int64
	var calls int
	for _, e := range h.events() {
		if e.Type != warden.EventModelCalled {
			continue
		}
		calls++
		var r struct {
			Usage warden.Usage `json:"usage"`
		}
		require.NoError(t, json.Unmarshal(e.Result, &r))
		audited += r.Usage.CostMicroUSD
	}
	require.Equal(t, res.Steps, calls, "one audited model call per step")
	require.Equal(t, audited, res.Usage.CostMicroUSD, "spend equals the audited calls: the retried attempt is not charged twice")
	fin := find(t, h.events(), warden.EventRunFinished)
	require.Contains(t, string(fin.Result), `"cost_micro_usd"`)
}

// TestFallbackSkipsFailingAndRefusedModels: the primary model fails
// permanently, the first fallback is blocked for everyone by policy, the
// second answers; the audit says so.
func TestFallbackSkipsFailingAndRefusedModels(t *testing.T) {
	t.Parallel()
	dir := teststack.PolicyDir(t, map[string]string{"warden/model_access/data.json": `{"blocked": ["scripted/echo"]}`})
	h := newHarnessWith(t, worker.Config{PolicyDir: dir})
	req := request("no_such_scenario")
	req.Fallbacks = []string{"scripted/echo", "scripted/answer"}
	res, err := h.run(req)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Contains(t, res.Answer, "42")
	called := find(t, h.events(), warden.EventModelCalled)
	require.Equal(t, "scripted/answer", called.Model)
	require.Contains(t, called.Message, "scripted/no_such_scenario failed")
	require.Contains(t, called.Message, "scripted/echo refused by policy: model scripted/echo is blocked by policy")

	h2 := newHarnessWith(t, worker.Config{PolicyDir: dir})
	req = request("echo")
	_, err = h2.run(req)
	require.NoError(t, err)
	require.Equal(t, 0, len(h2.ledger()))
	fin := find(t, h2.events(), warden.EventRunFinished)
	require.Equal(t, string(warden.StatusFailed), fin.Decision, "no usable model: the run fails clearly")
	require.Contains(t, fin.Message, "refused by policy")
}

// TestMalformedOutputIsToldAndBounded: an empty answer is sent back with
// an explanation and the model recovers; one that never recovers fails
// the run after three tries; too many calls in one answer are cut off.
func TestMalformedOutputIsToldAndBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res, err := h.run(request("empty_then_answer"))
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Contains(t, res.Answer, "42")
	require.Contains(t, find(t, h.events(), warden.EventModelOutputRejected).Message, "the answer was empty")

	h = newHarness(t)
	res, err = h.run(request("always_empty"))
	require.NoError(t, err)
	require.Equal(t, warden.StatusFailed, res.Status)
	require.Equal(t, 3, res.Steps)
	require.Contains(t, res.Error, "unusable 3 times in a row")

	h = newHarness(t)
	res, err = h.run(request("unknown_loop"))
	require.NoError(t, err)
	require.Equal(t, warden.StatusFailed, res.Status)
	require.Contains(t, res.Error, "none of the tool calls was usable")

	h = newHarness(t)
	res, err = h.run(request("too_many"))
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, 8, res.ToolCalls["executed"])
	require.Equal(t, 2, res.ToolCalls["too_many_calls"])
	require.Contains(t, res.Answer, "at most 8 tool calls per answer")
}

// TestTaintReachesThePolicy: after a tool ran, its output is marked
// untrusted and the policy sees the run's taint set.
func TestTaintReachesThePolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "clean_only.rego"), []byte(`package warden.authz

clean if count(object.get(input, "taint", [])) == 0

decision := {"allow": true, "risk": "low", "reasons": ["clean run"], "quorum": 1, "obligations": {"timeout_seconds": 30, "max_output_bytes": 65536}} if clean

decision := {"allow": false, "risk": "high", "reasons": [concat(", ", array.concat(["tainted by"], input.taint))], "quorum": 1, "obligations": {"timeout_seconds": 30, "max_output_bytes": 65536}} if not clean
`), 0o644))
	h := newHarnessWith(t, worker.Config{PolicyDir: dir})
	req := request("loop")
	req.Budget.MaxSteps = 2
	res, err := h.run(req)
	require.NoError(t, err)
	require.Equal(t, 1, res.ToolCalls["executed"], "the first call ran on a clean run")
	require.Equal(t, 1, res.ToolCalls["denied"], "the second saw the taint")
	var reasons []string
	for _, e := range h.events() {
		if e.Type == warden.EventPolicyDecided {
			reasons = append(reasons, e.Reasons...)
		}
	}
	require.Equal(t, []string{"clean run", "tainted by, tool:shell"}, reasons)
}

// TestContinueAsNewCarriesTheRun: past maxStepsPerSegment the run
// continues as new with its state; the next run does not start over.
func TestContinueAsNewCarriesTheRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	req := request("loop")
	req.Budget.MaxSteps = 500
	req.Budget.MaxTokens = 1 << 30
	_, err := h.run(req)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &can)
	var next warden.RunRequest
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	c := next.Continuation
	require.NotNil(t, c)
	require.Equal(t, 100, c.Step)
	require.Equal(t, 1, c.Segments)
	require.Equal(t, 100, c.ToolCalls["executed"])
	require.Equal(t, []string{"tool:shell"}, c.Taint)
	require.Len(t, c.Messages, 2+2*100)
	require.Positive(t, c.Usage.CostMicroUSD)
	require.Equal(t, warden.EventRunContinued, h.events()[len(h.events())-1].Type)

	// The next run picks up where this one stopped.
	h2 := newEnv(t, h.deps, h.dir)
	next.Budget.MaxSteps = 102
	res, err := h2.run(next)
	require.NoError(t, err)
	require.Equal(t, warden.StatusBudgetExhausted, res.Status)
	require.Equal(t, 102, res.Steps)
	require.Equal(t, 102, res.ToolCalls["executed"])
	var started int
	for _, e := range h2.events() {
		if e.Type == warden.EventRunStarted {
			started++
		}
	}
	require.Equal(t, 1, started, "a continued run is not a new run")
}

// TestLongToolOutputTravelsByReference: a 20,000-byte output reaches the
// model whole, while the Execute result in the workflow history carries a
// preview and a reference; the audit keeps the whole output.
func TestLongToolOutputTravelsByReference(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var executeResult int
	h.env.SetOnActivityCompletedListener(func(info *activity.Info, result converter.EncodedValue, err error) {
		if info.ActivityType.Name == "Execute" && err == nil {
			var out activities.ExecuteOutput
			require.NoError(t, result.Get(&out))
			b, _ := json.Marshal(out)
			executeResult = len(b)
			require.NotEmpty(t, out.ContentRef)
		}
	})
	res, err := h.run(request("big_output"))
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	var received int
	_, err = fmt.Sscanf(res.Answer[strings.Index(res.Answer, "Received"):], "Received %d bytes", &received)
	require.NoError(t, err, res.Answer)
	require.Greater(t, received, 20000, "the model got the whole output")
	require.Less(t, executeResult, 2<<10, "the history holds a preview")
	exec := find(t, h.events(), warden.EventToolExecuted)
	require.Greater(t, len(exec.Result), 20000, "the audit keeps the whole output")
}
