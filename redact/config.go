// Config, the policy data that picks the rules, and FromConfig, which builds a Redactor from it.

package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Config is the policy data at data.warden.redaction.
type Config struct {
	// Defaults, when false, drops the built-in rules. Default true.
	Defaults *bool `json:"defaults,omitempty"`
	// Disable names built-in rules to drop.
	Disable []string `json:"disable,omitempty"`
	// Rules are added after the built-in ones.
	Rules []Rule `json:"rules,omitempty"`
}

// FromConfig builds the Redactor that policy data describes: raw is the
// JSON at data.warden.redaction, or empty for the defaults.
func FromConfig(raw json.RawMessage) (*Redactor, error) {
	var cfg Config
	if len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("data.warden.redaction: %w", err)
		}
	}
	var rules []Rule
	if cfg.Defaults == nil || *cfg.Defaults {
		known := map[string]bool{}
		for _, r := range DefaultRules() {
			known[r.Name] = true
			if !slices.Contains(cfg.Disable, r.Name) {
				rules = append(rules, r)
			}
		}
		for _, name := range cfg.Disable {
			if !known[name] {
				return nil, fmt.Errorf("data.warden.redaction.disable: no built-in rule %q", name)
			}
		}
	}
	rules = append(rules, cfg.Rules...)
	r, err := New(rules)
	if err != nil {
		return nil, fmt.Errorf("data.warden.redaction: %w", err)
	}
	return r, nil
}
