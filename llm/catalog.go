package llm

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/wardenhq/warden"
)

// ModelConfig names one model runs can ask for: where it is served, how to
// authenticate, what it costs and how much it reads.
type ModelConfig struct {
	// Name is what runs call it (RunRequest.Model). A trailing "*" matches
	// any name with that prefix, for example "scripted/*".
	Name string `json:"name"`
	// BaseURL of its OpenAI-compatible API; empty means the worker's default endpoint.
	BaseURL string `json:"base_url,omitempty"`
	// APIKeyEnv names the environment variable holding its API key.
	APIKeyEnv string `json:"api_key_env,omitempty"`
	// APIKeyFile is a file holding its API key (read at start).
	APIKeyFile string `json:"api_key_file,omitempty"`
	// ModelID is the provider's model ID; empty means Name.
	ModelID string `json:"model_id,omitempty"`
	// InputPer1KUSD and OutputPer1KUSD are the prices per 1,000 tokens.
	InputPer1KUSD  float64 `json:"input_per_1k_usd"`
	OutputPer1KUSD float64 `json:"output_per_1k_usd"`
	// ContextWindow is the model's context size in tokens (0: unknown).
	ContextWindow int `json:"context_window,omitempty"`
	// Provider is who serves it, as traces and metrics name it
	// (gen_ai.provider.name: "openai", "anthropic", "aws.bedrock",
	// "azure.ai.openai", ...); empty means "openai", whose API Warden speaks.
	Provider string `json:"provider,omitempty"`
}

// DefaultModels prices the scripted model so demos and tests show spend.
// These are made-up prices for a fake model, served by ScriptedProvider.
var DefaultModels = []ModelConfig{{Name: ScriptedModelPrefix + "*", InputPer1KUSD: 0.001, OutputPer1KUSD: 0.002, ContextWindow: 128000, Provider: ScriptedProvider}}

// ScriptedProvider is the gen_ai.provider.name of the scripted model.
const ScriptedProvider = "warden.scripted"

// DefaultProvider is the gen_ai.provider.name of a model whose
// configuration names none: Warden speaks OpenAI's chat completions API.
const DefaultProvider = "openai"

// LoadModels reads a models file: {"models": [ModelConfig, ...]}.
func LoadModels(path string) ([]ModelConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("models file: %w", err)
	}
	var f struct {
		Models []ModelConfig `json:"models"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("models file %s: %w", path, err)
	}
	for i, m := range f.Models {
		if m.Name == "" {
			return nil, fmt.Errorf("models file %s: model %d has no name", path, i)
		}
		if m.InputPer1KUSD < 0 || m.OutputPer1KUSD < 0 {
			return nil, fmt.Errorf("models file %s: model %s has a negative price", path, m.Name)
		}
	}
	return f.Models, nil
}

// Router sends each request to the endpoint of the model it names and
// knows every model's price. *Router implements activities.Model and
// activities.Prices.
type Router struct {
	fallback *Client
	models   []ModelConfig
	mu       sync.Mutex
	clients  map[string]*Client
}

// NewRouter routes named models by models (first match wins; exact names
// before prefixes), and any other name to fallback.
func NewRouter(fallback *Client, models []ModelConfig) (*Router, error) {
	for _, m := range models {
		if m.APIKeyFile != "" {
			if _, err := os.ReadFile(m.APIKeyFile); err != nil {
				return nil, fmt.Errorf("model %s: api key file: %w", m.Name, err)
			}
		}
	}
	return &Router{fallback: fallback, models: models, clients: map[string]*Client{}}, nil
}

// Lookup finds the configuration for a model name.
func (r *Router) Lookup(name string) (ModelConfig, bool) {
	for _, m := range r.models {
		if m.Name == name {
			return m, true
		}
	}
	for _, m := range r.models {
		if p, ok := strings.CutSuffix(m.Name, "*"); ok && strings.HasPrefix(name, p) {
			return m, true
		}
	}
	return ModelConfig{}, false
}

// Price returns the per-1K-token prices of a model.
func (r *Router) Price(model string) (inPer1K, outPer1K float64, ok bool) {
	m, ok := r.Lookup(model)
	return m.InputPer1KUSD, m.OutputPer1KUSD, ok
}

// Provider returns who serves a model (ModelConfig.Provider, or
// DefaultProvider).
func (r *Router) Provider(model string) string {
	m, _ := r.Lookup(model)
	return cmp.Or(m.Provider, DefaultProvider)
}

// Complete sends req to the model's endpoint.
func (r *Router) Complete(ctx context.Context, req warden.ModelRequest) (warden.ModelResponse, error) {
	m, ok := r.Lookup(req.Model)
	if !ok || m.BaseURL == "" {
		if ok && m.ModelID != "" {
			req.Model = m.ModelID
		}
		return r.fallback.Complete(ctx, req)
	}
	c, err := r.client(m)
	if err != nil {
		return warden.ModelResponse{}, err
	}
	req.Model = cmp.Or(m.ModelID, req.Model)
	return c.Complete(ctx, req)
}

func (r *Router) client(m ModelConfig) (*Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[m.Name]; ok {
		return c, nil
	}
	key := ""
	switch {
	case m.APIKeyFile != "":
		b, err := os.ReadFile(m.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("model %s: api key file: %w", m.Name, err)
		}
		key = strings.TrimSpace(string(b))
	case m.APIKeyEnv != "":
		key = os.Getenv(m.APIKeyEnv)
		if key == "" {
			return nil, fmt.Errorf("%w: model %s: environment variable %s is empty", warden.ErrModelPermanent, m.Name, m.APIKeyEnv)
		}
	}
	c, err := New(Config{BaseURL: m.BaseURL, APIKey: key, Model: cmp.Or(m.ModelID, m.Name)})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("model %s", m.Name), err)
	}
	r.clients[m.Name] = c
	return c, nil
}
