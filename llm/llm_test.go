package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/llm"
)

func scripted(t *testing.T) (*llm.Scripted, *llm.Client) {
	t.Helper()
	s, err := llm.NewScripted()
	require.NoError(t, err)
	base, stop, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	c, err := llm.New(llm.Config{BaseURL: base, Model: "scripted/echo"})
	require.NoError(t, err)
	return s, c
}

func TestScriptedModelThroughGoOpenAI(t *testing.T) {
	t.Parallel()
	_, c := scripted(t)
	ctx := context.Background()
	msgs := []warden.Message{{Role: warden.RoleUser, Content: "say hello"}}
	tools := []warden.ToolSpec{{Name: "shell", Description: "run", Schema: json.RawMessage(`{"type":"object"}`)}}

	first, err := c.Complete(ctx, warden.ModelRequest{Messages: msgs, Tools: tools})
	require.NoError(t, err)
	require.Equal(t, "scripted/echo", first.Model)
	require.Len(t, first.ToolCalls, 1)
	require.Equal(t, "shell", first.ToolCalls[0].Name)
	require.JSONEq(t, `{"argv":["echo","hello from the sandbox"]}`, string(first.ToolCalls[0].Args))
	require.Equal(t, "tool_calls", first.FinishReason)
	require.Positive(t, first.Usage.InputTokens)
	require.Positive(t, first.Usage.OutputTokens)

	msgs = append(msgs,
		warden.Message{Role: warden.RoleAssistant, ToolCalls: first.ToolCalls},
		warden.Message{Role: warden.RoleTool, ToolCallID: first.ToolCalls[0].ID, Name: "shell", Content: "hello from the sandbox\n"})
	second, err := c.Complete(ctx, warden.ModelRequest{Messages: msgs, Tools: tools})
	require.NoError(t, err)
	require.Empty(t, second.ToolCalls)
	require.True(t, strings.HasPrefix(second.Content, llm.ScriptedPrefix), "scripted output says it is scripted")
	require.Contains(t, second.Content, "- shell: hello from the sandbox")
}

func TestScriptedModelUnknownScenarioIsPermanent(t *testing.T) {
	t.Parallel()
	_, c := scripted(t)
	_, err := c.Complete(context.Background(), warden.ModelRequest{Model: "scripted/nope", Messages: []warden.Message{{Role: "user", Content: "x"}}})
	require.ErrorIs(t, err, warden.ErrModelPermanent)
	require.ErrorContains(t, err, `unknown scripted scenario "nope"`)
	require.ErrorContains(t, err, "demo")
}

func TestScriptedModelRawArgsAndScenarioFiles(t *testing.T) {
	t.Parallel()
	s, c := scripted(t)
	file := filepath.Join(t.TempDir(), "extra.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"name":"custom","turns":[{"tool_calls":[{"name":"x","raw_args":"{oops"}]}]}`), 0o644))
	require.NoError(t, s.LoadFile(file))
	resp, err := c.Complete(context.Background(), warden.ModelRequest{Model: "scripted/custom", Messages: []warden.Message{{Role: "user", Content: "x"}}})
	require.NoError(t, err)
	require.Len(t, resp.ToolCalls, 1)
	var s2 string
	require.NoError(t, json.Unmarshal(resp.ToolCalls[0].Args, &s2), "non-JSON arguments are kept as a JSON string")
	require.Equal(t, "{oops", s2)

	require.ErrorContains(t, s.Add(llm.Scenario{Name: "empty"}), "no turns")
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{`), 0o644))
	require.ErrorContains(t, s.LoadFile(bad), "bad.json")
}

// TestProviderErrorsAreClassified: 4xx that cannot succeed are permanent;
// 429 and 5xx stay retryable for the activity's retry policy.
func TestProviderErrorsAreClassified(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status    int
		permanent bool
	}{{400, true}, {401, true}, {404, true}, {408, false}, {429, false}, {500, false}, {503, false}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(`{"error":{"message":"provider says no","type":"x"}}`))
		}))
		client, err := llm.New(llm.Config{BaseURL: srv.URL + "/v1", APIKey: "k", Model: "m", RetryBase: time.Millisecond})
		require.NoError(t, err)
		_, err = client.Complete(context.Background(), warden.ModelRequest{Messages: []warden.Message{{Role: "user", Content: "x"}}})
		srv.Close()
		require.Error(t, err, "status %d", c.status)
		require.Equal(t, c.permanent, errors.Is(err, warden.ErrModelPermanent), "status %d: %v", c.status, err)
	}
}

func TestNewNeedsABaseURL(t *testing.T) {
	t.Parallel()
	_, err := llm.New(llm.Config{})
	require.ErrorContains(t, err, "base URL is required")
}

// flaky answers with the scripted statuses in order, then delegates.
func flaky(t *testing.T, statuses []int, retryAfter string, then http.Handler) (*httptest.Server, *int) {
	t.Helper()
	calls := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*calls++
		if *calls <= len(statuses) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(statuses[*calls-1])
			_, _ = w.Write([]byte(`{"error":{"message":"try later","type":"x"}}`))
			return
		}
		then.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

// TestRetriesHonourRetryAfterAndBackoff: 429 with Retry-After and 5xx are
// retried inside one model call; 4xx is not; exhausted retries fail.
func TestRetriesHonourRetryAfterAndBackoff(t *testing.T) {
	t.Parallel()
	s, err := llm.NewScripted()
	require.NoError(t, err)
	msgs := []warden.Message{{Role: "user", Content: "x"}}

	srv, calls := flaky(t, []int{429}, "1", s)
	c, err := llm.New(llm.Config{BaseURL: srv.URL + "/v1", Model: "scripted/answer", RetryBase: 10 * time.Millisecond})
	require.NoError(t, err)
	start := time.Now()
	resp, err := c.Complete(context.Background(), warden.ModelRequest{Messages: msgs})
	require.NoError(t, err)
	require.Contains(t, resp.Content, "42")
	require.Equal(t, 2, *calls)
	require.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1 was honoured")

	srv, calls = flaky(t, []int{500, 503}, "", s)
	c, _ = llm.New(llm.Config{BaseURL: srv.URL + "/v1", Model: "scripted/answer", RetryBase: 10 * time.Millisecond})
	_, err = c.Complete(context.Background(), warden.ModelRequest{Messages: msgs})
	require.NoError(t, err)
	require.Equal(t, 3, *calls)

	srv, calls = flaky(t, []int{400, 400, 400}, "", s)
	c, _ = llm.New(llm.Config{BaseURL: srv.URL + "/v1", Model: "scripted/answer", RetryBase: 10 * time.Millisecond})
	_, err = c.Complete(context.Background(), warden.ModelRequest{Messages: msgs})
	require.ErrorIs(t, err, warden.ErrModelPermanent)
	require.Equal(t, 1, *calls, "a 400 is not retried")

	srv, calls = flaky(t, []int{502, 502, 502, 502}, "", s)
	c, _ = llm.New(llm.Config{BaseURL: srv.URL + "/v1", Model: "scripted/answer", RetryBase: 10 * time.Millisecond, Attempts: 3})
	_, err = c.Complete(context.Background(), warden.ModelRequest{Messages: msgs})
	require.Error(t, err)
	require.NotErrorIs(t, err, warden.ErrModelPermanent, "the activity may retry later")
	require.Equal(t, 3, *calls)
}

func TestRouterRoutesAndPrices(t *testing.T) {
	s, err := llm.NewScripted()
	require.NoError(t, err)
	base, stop, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer stop()
	deflt, err := llm.New(llm.Config{BaseURL: "http://127.0.0.1:1/v1"})
	require.NoError(t, err)
	t.Setenv("WARDEN_TEST_KEY", "k")
	r, err := llm.NewRouter(deflt, []llm.ModelConfig{
		{Name: "cheap", BaseURL: base, APIKeyEnv: "WARDEN_TEST_KEY", ModelID: "scripted/answer", InputPer1KUSD: 0.5, OutputPer1KUSD: 1.5},
		{Name: "scripted/*", InputPer1KUSD: 0.001, OutputPer1KUSD: 0.002},
	})
	require.NoError(t, err)
	resp, err := r.Complete(context.Background(), warden.ModelRequest{Model: "cheap", Messages: []warden.Message{{Role: "user", Content: "x"}}})
	require.NoError(t, err)
	require.Contains(t, resp.Content, "42")
	in, out, ok := r.Price("cheap")
	require.True(t, ok)
	require.Equal(t, 0.5, in)
	require.Equal(t, 1.5, out)
	in, _, ok = r.Price("scripted/demo")
	require.True(t, ok)
	require.Equal(t, 0.001, in)
	_, _, ok = r.Price("gpt-unknown")
	require.False(t, ok)

	file := filepath.Join(t.TempDir(), "models.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"models":[{"name":"m","input_per_1k_usd":1,"output_per_1k_usd":2,"bogus":1}]}`), 0o644))
	_, err = llm.LoadModels(file)
	require.ErrorContains(t, err, "bogus")
}

// TestSlowAndTruncatedResponses: a response slower than the timeout is
// retried; a truncated body is an error the activity may retry, never a
// permanent one.
func TestSlowAndTruncatedResponses(t *testing.T) {
	t.Parallel()
	s, err := llm.NewScripted()
	require.NoError(t, err)
	msgs := []warden.Message{{Role: "user", Content: "x"}}

	calls := 0
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			time.Sleep(500 * time.Millisecond)
		}
		s.ServeHTTP(w, r)
	}))
	defer slow.Close()
	c, err := llm.New(llm.Config{BaseURL: slow.URL + "/v1", Model: "scripted/answer", Timeout: 200 * time.Millisecond, RetryBase: time.Millisecond})
	require.NoError(t, err)
	resp, err := c.Complete(context.Background(), warden.ModelRequest{Messages: msgs})
	require.NoError(t, err)
	require.Contains(t, resp.Content, "42")
	require.Equal(t, 2, calls, "the timed-out attempt was retried")

	truncated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hal`))
	}))
	defer truncated.Close()
	c, err = llm.New(llm.Config{BaseURL: truncated.URL + "/v1", Model: "m"})
	require.NoError(t, err)
	_, err = c.Complete(context.Background(), warden.ModelRequest{Messages: msgs})
	require.Error(t, err)
	require.NotErrorIs(t, err, warden.ErrModelPermanent)
}
