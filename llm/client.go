package llm

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wardenhq/warden"
)

// ErrPermanent marks a model failure that retrying cannot fix (a 4xx other
// than 408 and 429: bad request, bad key, unknown model).
var ErrPermanent = warden.ErrModelPermanent

// Config configures a Client.
type Config struct {
	// BaseURL of the OpenAI-compatible API, for example https://api.openai.com/v1.
	BaseURL string
	// APIKey is sent as a bearer token; may be empty for local servers.
	APIKey string
	// Model is used when a request names none.
	Model string
	// Timeout bounds one HTTP call. Default 120s.
	Timeout time.Duration
	// Attempts is how many times a request is tried when the provider
	// answers 429 or 5xx or the connection fails. Default 3.
	Attempts int
	// RetryBase is the first backoff; it doubles per attempt, with jitter,
	// unless the provider sends Retry-After. Default 500ms.
	RetryBase time.Duration
}

// Client calls an OpenAI-compatible chat completions endpoint.
type Client struct {
	api   *openai.Client
	model string
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.BaseURL) == "" {
		return nil, errors.New("llm: base URL is required")
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	oc.HTTPClient = retrier{
		inner:    &http.Client{Timeout: cmp.Or(cfg.Timeout, 120*time.Second)},
		attempts: cmp.Or(cfg.Attempts, 3),
		base:     cmp.Or(cfg.RetryBase, 500*time.Millisecond),
	}
	return &Client{api: openai.NewClientWithConfig(oc), model: cfg.Model}, nil
}

// Complete sends one chat completion request.
func (c *Client) Complete(ctx context.Context, req warden.ModelRequest) (warden.ModelResponse, error) {
	model := cmp.Or(req.Model, c.model)
	if model == "" {
		return warden.ModelResponse{}, fmt.Errorf("%w: no model named and no default model configured", ErrPermanent)
	}
	creq := openai.ChatCompletionRequest{Model: model, MaxTokens: req.MaxOutputTokens}
	for _, m := range req.Messages {
		creq.Messages = append(creq.Messages, toOpenAIMessage(m))
	}
	for _, t := range req.Tools {
		creq.Tools = append(creq.Tools, openai.Tool{
			Type: openai.ToolTypeFunction,
			Function: &openai.FunctionDefinition{
				Name:        t.Name,
				Description: t.Description,
				Parameters:  t.Schema,
			},
		})
	}
	resp, err := c.api.CreateChatCompletion(ctx, creq)
	if err != nil {
		return warden.ModelResponse{}, translate(model, err)
	}
	if len(resp.Choices) == 0 {
		return warden.ModelResponse{}, fmt.Errorf("model %s returned no choices", model)
	}
	choice := resp.Choices[0]
	out := warden.ModelResponse{
		Model:        cmp.Or(resp.Model, model),
		ID:           resp.ID,
		Content:      choice.Message.Content,
		FinishReason: string(choice.FinishReason),
		Usage:        warden.Usage{InputTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.CompletionTokens},
	}
	for _, tc := range choice.Message.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, warden.ToolCall{
			ID:   tc.ID,
			Name: tc.Function.Name,
			Args: rawArgs(tc.Function.Arguments),
		})
	}
	return out, nil
}

// rawArgs keeps the model's argument text as JSON when it is JSON, and
// otherwise wraps it as a JSON string so that the call can be recorded and
// refused with a precise error instead of breaking serialisation.
func rawArgs(s string) json.RawMessage {
	if strings.TrimSpace(s) == "" {
		return json.RawMessage("{}")
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

func toOpenAIMessage(m warden.Message) openai.ChatCompletionMessage {
	om := openai.ChatCompletionMessage{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID}
	if m.Role == warden.RoleTool {
		om.Name = m.Name
	}
	for _, tc := range m.ToolCalls {
		om.ToolCalls = append(om.ToolCalls, openai.ToolCall{
			ID:       tc.ID,
			Type:     openai.ToolTypeFunction,
			Function: openai.FunctionCall{Name: tc.Name, Arguments: string(tc.Args)},
		})
	}
	return om
}

// translate turns go-openai errors into Warden's: 4xx that cannot succeed on
// retry wrap ErrPermanent; everything else (429, 5xx, timeouts, network)
// stays retryable.
func translate(model string, err error) error {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) && permanentStatus(apiErr.HTTPStatusCode) {
		return fmt.Errorf("%w: model %s: HTTP %d: %s", ErrPermanent, model, apiErr.HTTPStatusCode, apiErr.Message)
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) && permanentStatus(reqErr.HTTPStatusCode) {
		return fmt.Errorf("%w: model %s: HTTP %d: %s", ErrPermanent, model, reqErr.HTTPStatusCode, strings.TrimSpace(string(reqErr.Body)))
	}
	return fmt.Errorf("model %s: %w", model, err)
}

func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// retrier retries requests the provider may answer better later — 429,
// 500, 502, 503, 504 and connection errors — with exponential backoff and
// jitter, waiting as long as Retry-After asks (up to a minute). Other
// answers, 4xx above all, go back at once.
type retrier struct {
	inner    *http.Client
	attempts int
	base     time.Duration
}

func (r retrier) Do(req *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		resp, err := r.inner.Do(req)
		retry := (err != nil && req.Context().Err() == nil) || (err == nil && retryableStatus(resp.StatusCode))
		if !retry || attempt >= r.attempts || (err != nil && req.GetBody == nil && req.Body != nil) {
			return resp, err
		}
		wait := r.base << (attempt - 1)
		wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
		if resp != nil {
			if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				wait = min(ra, time.Minute)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
	}
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
