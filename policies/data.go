package policies

import (
	"encoding/json"
	"fmt"
)

// RedactionPath is where policy data configures audit redaction
// (redact.Config): data.warden.redaction.
var RedactionPath = []string{"warden", "redaction"}

// RedactionConfig returns the JSON document at data.warden.redaction in the
// policy opts names (its data.json files), or nil when the policy sets none.
// The worker builds the audit redactor from it.
func RedactionConfig(opts Options) (json.RawMessage, error) {
	src, err := load(opts, false)
	if err != nil {
		return nil, err
	}
	var node any = src.data
	for _, key := range RedactionPath {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, nil
		}
		if node, ok = m[key]; !ok {
			return nil, nil
		}
	}
	raw, err := json.Marshal(node)
	if err != nil {
		return nil, fmt.Errorf("encode data.warden.redaction: %w", err)
	}
	return raw, nil
}
