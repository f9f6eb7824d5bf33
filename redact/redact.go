// Package redact removes secrets and personal data from audit events before
// they are stored. A Redactor applies an ordered list of rules to the
// event's message and to every string (and number) inside its args and
// result JSON, replacing each match with "[REDACTED:<rule>]", and records
// which rules fired and how often in the event's Redactions (never the
// values). Rules are regular expressions on text, optionally with a
// checksum (Luhn for card numbers, the SSA rules for US SSNs), or patterns
// on JSON object keys whose whole value is secret ("password": "...").
//
// Redaction is deterministic: the same event always gives the same
// output, so a retried append produces the same row and hash. The output
// JSON is valid; policies extend or trim the defaults through policy data
// (see Config and docs/audit.md).
package redact

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// Redactor applies rules. It is safe for concurrent use.
type Redactor struct {
	text []compiled
	keys []compiled
}

// New compiles rules, naming the first bad one.
func New(rules []Rule) (*Redactor, error) {
	r := &Redactor{}
	seen := map[string]bool{}
	for i, rule := range rules {
		if strings.TrimSpace(rule.Name) == "" {
			return nil, fmt.Errorf("redaction rule %d: name is required", i)
		}
		if seen[rule.Name] {
			return nil, fmt.Errorf("redaction rule %s: defined twice", rule.Name)
		}
		seen[rule.Name] = true
		if (rule.Pattern == "") == (rule.Key == "") {
			return nil, fmt.Errorf("redaction rule %s: set exactly one of pattern and key", rule.Name)
		}
		switch rule.Check {
		case "", "luhn", "ssn", "phone", "phone_local", "iban", "basic":
		default:
			return nil, fmt.Errorf("redaction rule %s: unknown check %q (want luhn, ssn, phone, phone_local, iban or basic)", rule.Name, rule.Check)
		}
		src := cmp.Or(rule.Pattern, rule.Key)
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("redaction rule %s: %w", rule.Name, err)
		}
		if rule.Group < 0 || rule.Group > re.NumSubexp() {
			return nil, fmt.Errorf("redaction rule %s: group %d does not exist in the pattern", rule.Name, rule.Group)
		}
		c := compiled{Rule: rule, re: re, secret: true}
		if builtin[rule.Name] == rule {
			c.worth = prefilters[rule.Name]
			c.secret = !piiRules[rule.Name]
		}
		if rule.Key != "" {
			r.keys = append(r.keys, c)
		} else {
			r.text = append(r.text, c)
		}
	}
	return r, nil
}

// Default returns a Redactor with DefaultRules.
func Default() *Redactor {
	r, err := New(DefaultRules())
	if err != nil {
		panic(err) // the built-in rules compile; a test pins it
	}
	return r
}

// placeholder is what replaces a match of rule.
func placeholder(rule string) string { return placeholderPrefix + rule + "]" }

const placeholderPrefix = "[REDACTED:"

// counts tallies matches by rule.
type counts map[string]int

// scope selects which rules apply to a field.
type scope int

const (
	allRules    scope = iota
	secretRules       // fields that name who acted: secrets only
)

// Text redacts s and returns the result and the matches per rule.
func (r *Redactor) Text(s string) (string, map[string]int) {
	c := counts{}
	return r.text1(s, c, allRules, 0), c
}

// Redact returns e with every text field redacted — args, result, message
// and reasons with every rule; actor and request ID, which name who acted,
// with the secret rules only — and Redactions listing every rule that
// fired, per field, sorted. It implements audit.Redactor.
func (r *Redactor) Redact(e warden.AuditEvent) (warden.AuditEvent, error) {
	var found []warden.Redaction
	add := func(field string, c counts) {
		for rule, n := range c {
			found = append(found, warden.Redaction{Field: field, Rule: rule, Count: n})
		}
	}
	var err error
	c := counts{}
	if e.Args, err = r.json1(e.Args, c); err != nil {
		return e, fmt.Errorf("args: %w", err)
	}
	add("args", c)
	c = counts{}
	if e.Result, err = r.json1(e.Result, c); err != nil {
		return e, fmt.Errorf("result: %w", err)
	}
	add("result", c)
	c = counts{}
	e.Message = r.text1(e.Message, c, allRules, 0)
	add("message", c)
	if len(e.Reasons) > 0 {
		c = counts{}
		reasons := make([]string, len(e.Reasons))
		for i, reason := range e.Reasons {
			reasons[i] = r.text1(reason, c, allRules, 0)
		}
		if len(c) > 0 {
			e.Reasons = reasons
		}
		add("reasons", c)
	}
	c = counts{}
	e.Actor = r.text1(e.Actor, c, secretRules, 0)
	add("actor", c)
	c = counts{}
	e.RequestID = r.text1(e.RequestID, c, secretRules, 0)
	add("request_id", c)
	if len(found) == 0 {
		return e, nil
	}
	e.Redactions = append(slices.Clone(e.Redactions), found...)
	slices.SortFunc(e.Redactions, func(a, b warden.Redaction) int {
		return cmp.Or(cmp.Compare(a.Field, b.Field), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Count, b.Count))
	})
	return e, nil
}
