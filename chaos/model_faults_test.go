package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/llm"
	"github.com/wardenhq/warden/worker"
)

// Model classes of TestModelFaultsUnderLoad: the model a run names tells
// the faulty endpoint how to treat it.
const (
	// flakyModel answers through the scripted "echo" scenario, with random
	// transient faults and malformed answers (never two in a row).
	flakyModel = "scripted/echo"
	// downModel always answers 503.
	downModel = "down/echo"
	// goneModel always answers 404: the provider does not know the model.
	goneModel = "gone/echo"
	// babblerModel always answers with malformed tool calls.
	babblerModel = "babbler/echo"
	// stuckModel never answers within the client timeout.
	stuckModel = "stuck/echo"
)

// Fault kinds the endpoint injects into flaky runs' requests.
var faultKinds = []string{
	"slow", "http_500", "http_503_retry_after", "http_503", "http_429_retry_after", "http_429",
	"truncated_json", "garbage_body", "malformed_tool_call",
}

// modelTimeout bounds one HTTP call of the worker's model client.
const modelTimeout = 2 * time.Second

// faultyModel is an OpenAI-compatible endpoint that serves the scripted
// model and injects faults. It identifies a run by its goal (the first
// user message) and counts what it injected.
type faultyModel struct {
	scripted http.Handler
	rate     float64

	mu            sync.Mutex
	next          int             // round robin over faultKinds, so a short run sees every kind
	injected      map[string]int  // fault kind → count, in flaky runs
	permanent     map[string]int  // fault kind → count, in the permanently failing runs
	malformedRuns map[string]int  // goal → malformed answers sent
	lastMalformed map[string]bool // goal → the last answer sent was malformed
}

// ServeHTTP picks the request's fault from the model it names (for flaky
// runs, at random), counts it, and answers with it or, without one, with
// the scripted model.
func (f *faultyModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	_ = json.Unmarshal(body, &req)
	goal := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			goal = m.Content
			break
		}
	}
	kind := ""
	switch req.Model {
	case downModel:
		kind = "http_503"
	case goneModel:
		kind = "http_404"
	case babblerModel:
		kind = "malformed_tool_call"
	case stuckModel:
		kind = "slow"
	default:
		f.mu.Lock()
		if rand.Float64() < f.rate {
			kind = faultKinds[f.next%len(faultKinds)]
			f.next++
			if kind == "malformed_tool_call" && f.lastMalformed[goal] {
				kind = ""
			}
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	if kind != "" && req.Model != flakyModel {
		f.permanent[kind]++
	} else if kind != "" {
		f.injected[kind]++
	}
	if kind == "malformed_tool_call" {
		f.malformedRuns[goal]++
	}
	// Only an answer the run receives changes what comes next.
	if kind == "" || kind == "malformed_tool_call" {
		f.lastMalformed[goal] = kind == "malformed_tool_call"
	}
	f.mu.Unlock()

	switch kind {
	case "":
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.scripted.ServeHTTP(w, r)
	case "slow":
		// Past the client's timeout; stop once the client hangs up.
		select {
		case <-r.Context().Done():
		case <-time.After(modelTimeout + 2*time.Second):
		}
	case "http_500":
		http.Error(w, `{"error":{"message":"internal error","type":"server_error"}}`, http.StatusInternalServerError)
	case "http_503_retry_after":
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":{"message":"overloaded","type":"server_error"}}`, http.StatusServiceUnavailable)
	case "http_503":
		http.Error(w, `{"error":{"message":"overloaded","type":"server_error"}}`, http.StatusServiceUnavailable)
	case "http_429_retry_after":
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":{"message":"rate limited","type":"rate_limit_error"}}`, http.StatusTooManyRequests)
	case "http_429":
		http.Error(w, `{"error":{"message":"rate limited","type":"rate_limit_error"}}`, http.StatusTooManyRequests)
	case "http_404":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"message":"The model `+req.Model+` does not exist","type":"invalid_request_error","code":"model_not_found"}}`)
	case "truncated_json":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis`)
	case "garbage_body":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway (from a proxy that says 200)</body></html>")
	case "malformed_tool_call":
		// An unknown tool, and a known one with arguments that are not JSON.
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"bad","object":"chat.completion","model":"`+req.Model+`","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":"","tool_calls":[`+
			`{"id":"bad_1","type":"function","function":{"name":"she ll","arguments":"{}"}},`+
			`{"id":"bad_2","type":"function","function":{"name":"shell","arguments":"{\"argv\": [\"echo\", "}}]}}],"usage":{"prompt_tokens":10,"completion_tokens":10,"total_tokens":20}}`)
	}
}

// TestModelFaultsUnderLoad runs many concurrent runs against a model
// endpoint that fails in every way a provider does, through the real
// go-openai client: slow answers past the client timeout, 500, 503 and 429
// (with and without Retry-After), truncated and garbage bodies, and
// malformed tool calls. Runs hit only by transient faults complete; a
// model that is down, unknown or never answers fails the run with an
// error naming the model and the problem, in bounded time; a model whose
// output is always malformed fails after the malformed-output limit, with
// each rejection audited.
func TestModelFaultsUnderLoad(t *testing.T) {
	flaky := envInt("WARDEN_CHAOS_MODEL_RUNS", 12)
	perm := envInt("WARDEN_CHAOS_MODEL_PERMANENT_RUNS", 1)
	stuck := envInt("WARDEN_CHAOS_MODEL_STUCK_RUNS", 0) // each takes ~1.5 min of retries
	rate := float64(envInt("WARDEN_CHAOS_MODEL_FAULT_PERCENT", 40)) / 100

	scripted, err := llm.NewScripted()
	require.NoError(t, err)
	fm := &faultyModel{scripted: scripted, rate: rate, injected: map[string]int{}, permanent: map[string]int{}, malformedRuns: map[string]int{},
		lastMalformed: map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	httpSrv := &http.Server{Handler: fm}
	go func() { _ = httpSrv.Serve(ln) }()
	t.Cleanup(func() { _ = httpSrv.Close() })
	baseURL := "http://" + ln.Addr().String() + "/v1"

	srv := testenv.DevServer(t)
	dsn := testenv.PostgresSchema(t)
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		TaskQueue:       "chaos-model-" + testenv.RandomHex(4),
		DatabaseURL:     dsn,
		DataDir:         t.TempDir(),
		ModelBaseURL:    baseURL,
		ModelName:       flakyModel,
		// The SDK logs every failed attempt at error level: thousands here.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})),
	}
	runModelWorker(t, cfg, baseURL)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := client.New(srv.Client(), cfg.TaskQueue)
	tenant := "acme"
	type run struct {
		id, model string
		started   time.Time
		took      time.Duration
		res       warden.RunResult
		err       error
	}
	var list []*run
	add := func(model string, n int) {
		for range n {
			list = append(list, &run{id: fmt.Sprintf("%s-%d", cfg.TaskQueue, len(list)), model: model})
		}
	}
	add(flakyModel, flaky)
	add(downModel, perm)
	add(goneModel, perm)
	add(babblerModel, perm)
	add(stuckModel, stuck)
	var wg sync.WaitGroup
	for _, r := range list {
		r.started = time.Now()
		_, err := c.Start(ctx, warden.RunRequest{Tenant: tenant, Requester: "dana", Goal: "goal of " + r.id, Model: r.model},
			client.StartOptions{ID: r.id})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.res, r.err = c.Result(ctx, r.id)
			r.took = time.Since(r.started)
		}()
	}
	wg.Wait()

	store, err := audit.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer store.Close()
	report, err := audit.Verify(ctx, store, audit.VerifyOptions{Tenant: tenant})
	require.NoError(t, err)
	require.Empty(t, report.Breaks, "every audit chain verifies")

	states := map[string]map[warden.RunStatus]int{}
	slowest := map[string]time.Duration{}
	for _, r := range list {
		require.NoError(t, r.err, r.id)
		res := r.res
		if states[r.model] == nil {
			states[r.model] = map[warden.RunStatus]int{}
		}
		states[r.model][res.Status]++
		slowest[r.model] = max(slowest[r.model], r.took)
		n := eventsOnce(ctx, t, store, tenant, r.id)
		require.Equal(t, 1, n[warden.EventRunStarted], r.id)
		require.Equal(t, 1, n[warden.EventRunFinished], r.id)
		require.Equal(t, n[warden.EventToolRequested]-n[invalidArgsRequested], n[warden.EventPolicyDecided],
			"%s: every request with valid arguments decided by the policy", r.id)
		require.Equal(t, res.ToolCalls["executed"], n[warden.EventToolExecuted], "%s: %+v", r.id, res.ToolCalls)
		fm.mu.Lock()
		malformed := fm.malformedRuns["goal of "+r.id]
		fm.mu.Unlock()
		switch r.model {
		case flakyModel:
			require.Equal(t, warden.StatusCompleted, res.Status, "%s: transient faults only: %+v", r.id, res)
			require.Equal(t, res.Steps, n[warden.EventModelCalled], "%s: one model_called per answered step", r.id)
			require.Equal(t, malformed, n[warden.EventModelOutputRejected], "%s: each malformed answer rejected and audited", r.id)
		case downModel, stuckModel, goneModel:
			require.Equal(t, warden.StatusFailed, res.Status, "%s: %+v", r.id, res)
			require.Contains(t, res.Error, "model call failed", r.id)
			require.Contains(t, res.Error, r.model, "%s: the error names the model", r.id)
			want := map[string]string{downModel: "503", goneModel: "HTTP 404", stuckModel: "Timeout"}[r.model]
			require.Contains(t, res.Error, want, "%s: the error says what went wrong", r.id)
			require.Zero(t, n[warden.EventModelCalled], r.id)
		case babblerModel:
			require.Equal(t, warden.StatusFailed, res.Status, "%s: %+v", r.id, res)
			require.Contains(t, res.Error, "unusable 3 times in a row", r.id)
			require.Equal(t, 3, res.Steps, "%s: bounded by the malformed-output limit", r.id)
			require.Equal(t, 3, n[warden.EventModelOutputRejected], "%s: each rejection audited", r.id)
			require.Equal(t, 3, n[warden.EventModelCalled], r.id)
			require.Equal(t, 6, n[warden.EventToolRequested], "%s: the malformed calls are audited as requested and refused", r.id)
			require.Equal(t, 3, n[invalidArgsRequested], "%s: the non-JSON arguments are refused before the policy", r.id)
			require.Zero(t, n[warden.EventToolExecuted], r.id)
		}
	}
	fm.mu.Lock()
	defer fm.mu.Unlock()
	var finals []string
	for _, m := range []string{flakyModel, downModel, goneModel, babblerModel, stuckModel} {
		if s := states[m]; s != nil {
			finals = append(finals, fmt.Sprintf("%s: %v (slowest %s)", m, s, slowest[m].Round(100*time.Millisecond)))
		}
	}
	t.Logf("model chaos: %d runs (%d flaky at %.0f%% faults per request, %d down, %d gone, %d babbling, %d stuck)", len(list), flaky, rate*100, perm, perm, perm, stuck)
	t.Logf("faults injected into flaky runs: %s", countList(fm.injected))
	t.Logf("answers to the permanently failing runs: %s", countList(fm.permanent))
	t.Logf("final states: %s", strings.Join(finals, "; "))
	t.Logf("%d audit events in %d chains verified, 0 duplicates", report.Events, report.Chains)
}

// runModelWorker runs the worker's real dependencies (worker.Build) with
// the model client the test needs: the same go-openai client and router,
// pointed at baseURL, with a short timeout so that slow answers time out
// in seconds, not in the default two minutes.
func runModelWorker(t *testing.T, cfg worker.Config, baseURL string) {
	t.Helper()
	ctx := context.Background()
	deps, err := worker.Build(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(deps.Close)
	endpoint, err := llm.New(llm.Config{BaseURL: baseURL, Model: cfg.ModelName, Timeout: modelTimeout, RetryBase: 200 * time.Millisecond})
	require.NoError(t, err)
	router, err := llm.NewRouter(endpoint, llm.DefaultModels)
	require.NoError(t, err)
	deps.Activities.Model, deps.Activities.Prices = router, router
	tc, err := worker.Dial(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	require.NoError(t, worker.EnsureSearchAttributes(ctx, tc, "default"))
	w := sdkworker.New(tc, cfg.TaskQueue, sdkworker.Options{})
	worker.Register(w, deps)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
}

// eventsOnce reads a run's audit events, fails on any recorded twice (the
// same type, step, call, actor and request under another ID), and counts
// them by type.
func eventsOnce(ctx context.Context, t *testing.T, store audit.Store, tenant, id string) map[warden.EventType]int {
	t.Helper()
	evs, err := store.Query(ctx, warden.AuditFilter{Tenant: tenant, WorkflowID: id, Limit: audit.MaxQueryLimit})
	require.NoError(t, err)
	seen := map[string]bool{}
	n := map[warden.EventType]int{}
	for _, e := range evs {
		key := fmt.Sprintf("%s/%d/%s/%s/%s", e.Type, e.Step, e.CallID, e.Actor, e.RequestID)
		require.False(t, seen[key], "%s: duplicate audit event %s", id, key)
		seen[key] = true
		n[e.Type]++
		if e.Type == warden.EventToolRequested && e.Decision == string(activities.VerdictInvalidArgs) {
			n[invalidArgsRequested]++
		}
	}
	return n
}

// invalidArgsRequested counts, in eventsOnce's map, the tool_requested
// events refused for invalid arguments: those never reach the policy.
const invalidArgsRequested warden.EventType = "tool_requested(invalid_args)"

// countList formats counts as "a=1 b=2", sorted by key.
func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
