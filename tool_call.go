package warden

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/wardenhq/warden/internal/canon"
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
	// Summary is the template of a call's one-line summary for people
	// (the Web UI's activity summary; syntax in ParseSummary), such as
	// "read_file: {path}". Empty shows the tool name. It is not sent to
	// the model.
	Summary string `json:"summary,omitempty"`
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

// Argument forms: how ArgsHash encodes a call's arguments before hashing.
// A run records the form it uses (ApprovalRequest.ArgsForm and the
// activity inputs); runs started before the canonical form keep theirs.
const (
	// ArgsFormLegacy is encoding/json's re-encoding: keys sorted, number
	// literals kept, HTML characters escaped. Not the audit's form.
	ArgsFormLegacy = 0
	// ArgsFormCanonical is internal/canon, the form the audit chain hashes
	// (docs/audit.md): an auditor recomputes an approval's args hash from
	// the stored args.
	ArgsFormCanonical = 2
)

// CanonicalJSON is the canonical form of a JSON document (internal/canon,
// specified in docs/audit.md).
func CanonicalJSON(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	return canon.JSON(raw)
}

// ArgsHash is the hex SHA-256 of the canonical form of args.
func ArgsHash(args json.RawMessage) (string, error) {
	return ArgsHashForm(args, ArgsFormCanonical)
}

// ArgsHashForm is the hex SHA-256 of args encoded in form.
func ArgsHashForm(args json.RawMessage, form int) (string, error) {
	var c []byte
	var err error
	switch form {
	case ArgsFormLegacy:
		c, err = legacyJSON(args)
	case ArgsFormCanonical:
		c, err = CanonicalJSON(args)
	default:
		err = fmt.Errorf("unknown argument form %d", form)
	}
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// legacyJSON is the ArgsFormLegacy encoding.
func legacyJSON(raw json.RawMessage) ([]byte, error) {
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
	return json.Marshal(v)
}
