package warden

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// ToolCall is one tool invocation the model asked for.
type ToolCall struct {
	// ID is the model's identifier for the call, echoed back with the result.
	ID string `json:"id"`
	// Name is the tool name.
	Name string `json:"name"`
	// Args is the model-produced JSON arguments object, untrusted.
	Args json.RawMessage `json:"args"`
}

// ToolSpec describes a registered tool to the model, the policy and the audit.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	// Risk is the tool author's hint; the policy decides the real risk.
	Risk Risk `json:"risk"`
	// Idempotent tools may be retried; others get one attempt and an
	// idempotency key, and an unknown outcome is reported, never retried.
	Idempotent bool `json:"idempotent"`
	// Effects names the kinds of side effect ("read", "write", "exec", "network", "payment").
	Effects []string `json:"effects,omitempty"`
}

// ToolOutput is what came back from running a tool, as told to the model.
type ToolOutput struct {
	// Content is the text returned to the model.
	Content string `json:"content"`
	// IsError marks a failed or refused call.
	IsError bool `json:"is_error,omitempty"`
	// ExitCode of a process tool; 0 for Go tools that succeeded.
	ExitCode int `json:"exit_code"`
	// Truncated is set when output caps cut the content.
	Truncated bool `json:"truncated,omitempty"`
	// DurationMS is the sandboxed run's wall-clock time.
	DurationMS int64 `json:"duration_ms"`
}

// CanonicalJSON re-encodes a JSON document with object keys sorted and no
// insignificant whitespace, so equal documents hash equally. Numbers keep
// their literal text.
func CanonicalJSON(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return []byte("null"), nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("canonical json: trailing data after the document")
	}
	// encoding/json sorts map keys and keeps json.Number literals.
	return json.Marshal(v)
}

// ArgsHash is the hex SHA-256 of the canonical form of args.
func ArgsHash(args json.RawMessage) (string, error) {
	c, err := CanonicalJSON(args)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}
