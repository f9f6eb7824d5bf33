package llm

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ScriptedPrefix starts every answer of the scripted model, so nobody
// mistakes its output for a real model's.
const ScriptedPrefix = "[scripted model] "

// ScriptedModelPrefix is how a run names a scenario: "scripted/<scenario>".
const ScriptedModelPrefix = "scripted/"

//go:embed scenarios/*.json
var builtinScenarios embed.FS

// Scenario is a scripted conversation: turn i answers the request that
// already holds i assistant messages.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Turns       []Turn `json:"turns"`
	// RepeatLast replays the last turn forever (for budget tests); otherwise
	// requests past the end get a closing answer.
	RepeatLast bool `json:"repeat_last,omitempty"`
}

// Turn is one scripted answer: tool calls, content, or both. In Content,
// "{{tool_results}}" is replaced by a summary of the tool results the
// request carries since the last assistant message.
type Turn struct {
	Content   string         `json:"content,omitempty"`
	ToolCalls []ScriptedCall `json:"tool_calls,omitempty"`
	// Empty answers with no content and no tool calls (a malformed answer).
	Empty bool `json:"empty,omitempty"`
}

// ScriptedCall is one tool call of a scripted turn. Args is sent verbatim
// (RawArgs, when set, is sent as-is even if it is not JSON).
type ScriptedCall struct {
	Name    string          `json:"name"`
	Args    json.RawMessage `json:"args,omitempty"`
	RawArgs string          `json:"raw_args,omitempty"`
}

// Scripted is an OpenAI-compatible chat completions server that replays
// scenarios. It is safe for concurrent use.
type Scripted struct {
	mu        sync.RWMutex
	scenarios map[string]Scenario
}

// NewScripted returns a server that knows the built-in scenarios.
func NewScripted() (*Scripted, error) {
	s := &Scripted{scenarios: map[string]Scenario{}}
	entries, err := fs.ReadDir(builtinScenarios, "scenarios")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := builtinScenarios.ReadFile(path.Join("scenarios", e.Name()))
		if err != nil {
			return nil, err
		}
		if err := s.addJSON(e.Name(), b); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// LoadFile adds the scenarios of a JSON file holding one Scenario or an array of them.
func (s *Scripted) LoadFile(name string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("load scenario file: %w", err)
	}
	return s.addJSON(name, b)
}

func (s *Scripted) addJSON(source string, b []byte) error {
	var many []Scenario
	if err := json.Unmarshal(b, &many); err != nil {
		var one Scenario
		if err1 := json.Unmarshal(b, &one); err1 != nil {
			return fmt.Errorf("scenario file %s: %w", source, err1)
		}
		many = []Scenario{one}
	}
	for _, sc := range many {
		if err := s.Add(sc); err != nil {
			return fmt.Errorf("scenario file %s: %w", source, err)
		}
	}
	return nil
}

// Add registers (or replaces) a scenario.
func (s *Scripted) Add(sc Scenario) error {
	if sc.Name == "" {
		return errors.New("scenario has no name")
	}
	if len(sc.Turns) == 0 {
		return fmt.Errorf("scenario %s has no turns", sc.Name)
	}
	for i, t := range sc.Turns {
		if t.Content == "" && len(t.ToolCalls) == 0 && !t.Empty {
			return fmt.Errorf("scenario %s turn %d has neither content nor tool calls", sc.Name, i)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scenarios[sc.Name] = sc
	return nil
}

// Names lists the known scenario names, sorted.
func (s *Scripted) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.scenarios))
	for n := range s.scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Listen serves the scripted model on addr (for example "127.0.0.1:0") and
// returns the base URL to configure a Client with, and a function that stops it.
func (s *Scripted) Listen(addr string) (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("scripted model: %w", err)
	}
	srv := &http.Server{Handler: s}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/v1", func() { _ = srv.Close() }, nil
}

// The subset of the chat completions wire format the scripted model reads and writes.
type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
}

type chatMessage struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	ToolCalls  []chatCall `json:"tool_calls,omitempty"`
}

type chatCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// ServeHTTP answers POST .../chat/completions.
func (s *Scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		writeAPIError(w, http.StatusNotFound, "the scripted model serves only POST /v1/chat/completions")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "read request: "+err.Error())
		return
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeAPIError(w, http.StatusBadRequest, "decode request: "+err.Error())
		return
	}
	name := strings.TrimPrefix(req.Model, ScriptedModelPrefix)
	s.mu.RLock()
	sc, ok := s.scenarios[name]
	s.mu.RUnlock()
	if !ok {
		writeAPIError(w, http.StatusNotFound, fmt.Sprintf("unknown scripted scenario %q; known: %s (name a model as %s<scenario>)",
			name, strings.Join(s.Names(), ", "), ScriptedModelPrefix))
		return
	}
	turnIndex := 0
	for _, m := range req.Messages {
		if m.Role == "assistant" {
			turnIndex++
		}
	}
	var turn Turn
	switch {
	case turnIndex < len(sc.Turns):
		turn = sc.Turns[turnIndex]
	case sc.RepeatLast:
		turn = sc.Turns[len(sc.Turns)-1]
	default:
		turn = Turn{Content: "the scenario " + sc.Name + " has no more turns; stopping."}
	}

	msg := chatMessage{Role: "assistant"}
	if turn.Content != "" && !turn.Empty {
		content := strings.ReplaceAll(turn.Content, "{{tool_results}}", toolResultSummary(req.Messages))
		msg.Content = ScriptedPrefix + strings.ReplaceAll(content, "{{tool_result_bytes}}", strconv.Itoa(toolResultBytes(req.Messages)))
	}
	for i, c := range turn.ToolCalls {
		call := chatCall{ID: fmt.Sprintf("call_%d_%d", turnIndex, i), Type: "function"}
		call.Function.Name = c.Name
		call.Function.Arguments = cmpString(c.RawArgs, string(c.Args), "{}")
		msg.ToolCalls = append(msg.ToolCalls, call)
	}
	finish := "stop"
	if len(msg.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	out, _ := json.Marshal(msg)
	resp := map[string]any{
		"id":      fmt.Sprintf("scripted-%s-%d", sc.Name, turnIndex),
		"object":  "chat.completion",
		"created": 0,
		"model":   ScriptedModelPrefix + sc.Name,
		"choices": []map[string]any{{"index": 0, "message": json.RawMessage(out), "finish_reason": finish}},
		"usage": map[string]int{
			"prompt_tokens":     estimateTokens(len(body)),
			"completion_tokens": estimateTokens(len(out)),
			"total_tokens":      estimateTokens(len(body)) + estimateTokens(len(out)),
		},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// toolResultSummary lists the tool results after the last assistant message.
func toolResultSummary(msgs []chatMessage) string {
	last := -1
	for i, m := range msgs {
		if m.Role == "assistant" {
			last = i
		}
	}
	var lines []string
	for _, m := range msgs[last+1:] {
		if m.Role != "tool" {
			continue
		}
		content := strings.Join(strings.Fields(m.Content), " ")
		if len(content) > 600 {
			content = content[:600] + "..."
		}
		lines = append(lines, fmt.Sprintf("- %s: %s", cmpString(m.Name, m.ToolCallID), content))
	}
	if len(lines) == 0 {
		return "(no tool results)"
	}
	return strings.Join(lines, "\n")
}

// toolResultBytes is the total length of the tool results after the last
// assistant message: proof of what the model really received.
func toolResultBytes(msgs []chatMessage) int {
	last := -1
	for i, m := range msgs {
		if m.Role == "assistant" {
			last = i
		}
	}
	n := 0
	for _, m := range msgs[last+1:] {
		if m.Role == "tool" {
			n += len(m.Content)
		}
	}
	return n
}

// estimateTokens approximates a token count from a byte count (4 bytes a token).
func estimateTokens(n int) int { return (n + 3) / 4 }

func cmpString(vals ...string) string {
	i := slices.IndexFunc(vals, func(v string) bool { return v != "" })
	if i < 0 {
		return ""
	}
	return vals[i]
}

func writeAPIError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": msg, "type": "invalid_request_error"},
	})
}
