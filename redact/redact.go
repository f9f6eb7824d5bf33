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
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// Rule is one redaction rule. Exactly one of Pattern and Key is set.
type Rule struct {
	// Name identifies the rule in Redactions and in the placeholder.
	Name string `json:"name"`
	// Pattern is an RE2 regular expression matched against text.
	Pattern string `json:"pattern,omitempty"`
	// Group, when positive, redacts only that capture group of a Pattern
	// match (for example the password of a URL), keeping the rest.
	Group int `json:"group,omitempty"`
	// Check, when set, must accept a Pattern match's digits for it to be
	// redacted: "luhn" (card numbers), "ssn" (US social security numbers)
	// or "phone" (8 to 15 digits).
	Check string `json:"check,omitempty"`
	// Key is an RE2 regular expression matched against JSON object keys:
	// the whole value under a matching key is redacted.
	Key string `json:"key,omitempty"`
}

// Config is the policy data at data.warden.redaction.
type Config struct {
	// Defaults, when false, drops the built-in rules. Default true.
	Defaults *bool `json:"defaults,omitempty"`
	// Disable names built-in rules to drop.
	Disable []string `json:"disable,omitempty"`
	// Rules are added after the built-in ones.
	Rules []Rule `json:"rules,omitempty"`
}

// DefaultRules are the built-in rules, in the order they apply: specific
// secret formats first, then personal data.
func DefaultRules() []Rule {
	return []Rule{
		{Name: "private_key", Pattern: `-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[\s\S]*)`},
		{Name: "secret_key", Key: `(?i)^(?:password|passwd|pwd|secret|client_secret|api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|token|authorization|private[_-]?key|secret[_-]?access[_-]?key|session[_-]?token|cookie|set-cookie)$`},
		{Name: "jwt", Pattern: `\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}`},
		{Name: "github_token", Pattern: `\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`},
		{Name: "slack_token", Pattern: `\bxox[abprs]-[A-Za-z0-9-]{10,}`},
		{Name: "api_key", Pattern: `\b(?:sk|rk|pk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}|\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_-]{35}`},
		{Name: "aws_access_key", Pattern: `\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b`},
		{Name: "aws_secret_key", Pattern: `(?i)\baws_?secret_?access_?key\b["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})`, Group: 1},
		{Name: "bearer_token", Pattern: `(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/=-]{16,})`, Group: 1},
		{Name: "url_password", Pattern: `(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@"]+:([^/\s@"]+)@`, Group: 1},
		{Name: "secret_assignment", Pattern: `(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)\b\s*[:=]\s*["']?([^\s"',;&]{4,})`, Group: 1},
		{Name: "card_number", Pattern: `\b\d(?:[ -]?\d){12,18}\b`, Check: "luhn"},
		{Name: "us_ssn", Pattern: `\b\d{3}-\d{2}-\d{4}\b`, Check: "ssn"},
		{Name: "email", Pattern: `\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b`},
		{Name: "phone", Pattern: `\+[1-9]\d{0,2}(?:[\s.-]?\(?\d{1,4}\)?){2,6}\b|(?:\+[1-9]\d{0,2}[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b`, Check: "phone"},
	}
}

type compiled struct {
	Rule
	re *regexp.Regexp
	// worth is a cheap test that must pass for the regexp to possibly
	// match (nil: always run it). Built-in rules have one.
	worth func(t *text) bool
}

// text is a string being redacted, with lazily computed facts the
// prefilters share.
type text struct {
	s     string
	lower string
	runs  *[runKinds]int
}

func (t *text) lowered() string {
	if t.lower == "" {
		t.lower = strings.ToLower(t.s)
	}
	return t.lower
}

// Digit-run kinds: which separators may sit between the digits of a run.
const (
	runCard  = iota // spaces and dashes
	runSSN          // dashes
	runPhone        // spaces, dots, dashes, parentheses, plus
	runKinds
)

// sepKinds[c] has bit k set when c may separate digits in a run of kind k.
var sepKinds = func() (t [256]uint8) {
	for k, seps := range [runKinds]string{runCard: " -", runSSN: "-", runPhone: " .-()+"} {
		for i := 0; i < len(seps); i++ {
			t[seps[i]] |= 1 << k
		}
	}
	return t
}()

// digitRun is the most digits in one run of t of the given kind, where
// digits are separated by at most two separator characters.
func (t *text) digitRun(kind int) int {
	if t.runs == nil {
		t.runs = new([runKinds]int)
		var cur, gap [runKinds]int
		for i := 0; i < len(t.s); i++ {
			c := t.s[i]
			if c >= '0' && c <= '9' {
				for k := range runKinds {
					cur[k]++
					gap[k] = 0
					t.runs[k] = max(t.runs[k], cur[k])
				}
				continue
			}
			bits := sepKinds[c]
			for k := range runKinds {
				if bits&(1<<k) != 0 && gap[k] < 2 {
					gap[k]++
				} else {
					cur[k], gap[k] = 0, 0
				}
			}
		}
	}
	return t.runs[kind]
}

// prefilters are the built-in rules' cheap tests.
var prefilters = map[string]func(t *text) bool{
	"private_key":  func(t *text) bool { return strings.Contains(t.s, "PRIVATE KEY") },
	"jwt":          func(t *text) bool { return strings.Contains(t.s, "eyJ") },
	"github_token": func(t *text) bool { return strings.Contains(t.s, "_") },
	"slack_token":  func(t *text) bool { return strings.Contains(t.s, "xox") },
	"api_key": func(t *text) bool {
		return strings.Contains(t.s, "k-") || strings.Contains(t.s, "k_") || strings.Contains(t.s, "AIza")
	},
	"aws_access_key": func(t *text) bool { return strings.Contains(t.s, "A") },
	"aws_secret_key": func(t *text) bool { return strings.Contains(t.lowered(), "secret") },
	"bearer_token": func(t *text) bool {
		l := t.lowered()
		return strings.Contains(l, "bearer") || strings.Contains(l, "token")
	},
	"url_password": func(t *text) bool { return strings.Contains(t.s, "://") },
	"secret_assignment": func(t *text) bool {
		l := t.lowered()
		return strings.ContainsAny(l, ":=") && (strings.Contains(l, "pass") || strings.Contains(l, "pwd") ||
			strings.Contains(l, "secret") || strings.Contains(l, "key") || strings.Contains(l, "token"))
	},
	"card_number": func(t *text) bool { return t.digitRun(runCard) >= 13 },
	"us_ssn":      func(t *text) bool { return t.digitRun(runSSN) >= 9 },
	"email":       func(t *text) bool { return strings.Contains(t.s, "@") },
	"phone":       func(t *text) bool { return t.digitRun(runPhone) >= 10 },
}

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
		case "", "luhn", "ssn", "phone":
		default:
			return nil, fmt.Errorf("redaction rule %s: unknown check %q (want luhn, ssn or phone)", rule.Name, rule.Check)
		}
		src := cmp.Or(rule.Pattern, rule.Key)
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("redaction rule %s: %w", rule.Name, err)
		}
		if rule.Group < 0 || rule.Group > re.NumSubexp() {
			return nil, fmt.Errorf("redaction rule %s: group %d does not exist in the pattern", rule.Name, rule.Group)
		}
		c := compiled{Rule: rule, re: re}
		if builtin[rule.Name] == rule {
			c.worth = prefilters[rule.Name]
		}
		if rule.Key != "" {
			r.keys = append(r.keys, c)
		} else {
			r.text = append(r.text, c)
		}
	}
	return r, nil
}

// builtin maps the built-in rules by name; a prefilter applies only to an
// unchanged built-in rule.
var builtin = func() map[string]Rule {
	m := map[string]Rule{}
	for _, r := range DefaultRules() {
		m[r.Name] = r
	}
	return m
}()

// Default returns a Redactor with DefaultRules.
func Default() *Redactor {
	r, err := New(DefaultRules())
	if err != nil {
		panic(err) // the built-in rules compile; a test pins it
	}
	return r
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

// placeholder is what replaces a match of rule.
func placeholder(rule string) string { return "[REDACTED:" + rule + "]" }

// counts tallies matches by rule.
type counts map[string]int

// Text redacts s and returns the result and the matches per rule.
func (r *Redactor) Text(s string) (string, map[string]int) {
	c := counts{}
	return r.text1(s, c), c
}

func (r *Redactor) text1(s string, c counts) string {
	t := &text{s: s}
	for _, rule := range r.text {
		if rule.worth != nil && !rule.worth(t) {
			continue
		}
		if out := rule.apply(t.s, c); out != t.s {
			t = &text{s: out}
		}
	}
	return t.s
}

func (rule compiled) apply(s string, c counts) string {
	matches := rule.re.FindAllStringSubmatchIndex(s, -1)
	if len(matches) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		start, end := m[0], m[1]
		if rule.Group > 0 {
			start, end = m[2*rule.Group], m[2*rule.Group+1]
			if start < 0 {
				continue
			}
		}
		if rule.Check != "" && !check(rule.Check, s[start:end]) {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(placeholder(rule.Name))
		last = end
		c[rule.Name]++
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// JSON redacts every string and number in the JSON value raw, and every
// value under a secret key, and returns valid JSON.
func (r *Redactor) JSON(raw json.RawMessage) (json.RawMessage, map[string]int, error) {
	c := counts{}
	out, err := r.json1(raw, c)
	return out, c, err
}

func (r *Redactor) json1(raw json.RawMessage, c counts) (json.RawMessage, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	changed := false
	v = r.walk(v, c, &changed)
	if !changed {
		return raw, nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	return out, nil
}

func (r *Redactor) walk(v any, c counts, changed *bool) any {
	switch v := v.(type) {
	case string:
		s := r.text1(v, c)
		if s != v {
			*changed = true
		}
		return s
	case json.Number:
		s := r.text1(string(v), c)
		if s != string(v) {
			*changed = true
			return s
		}
		return v
	case []any:
		for i := range v {
			v[i] = r.walk(v[i], c, changed)
		}
		return v
	case map[string]any:
		for k, val := range v {
			if rule, ok := r.secretKey(k); ok && !isEmpty(val) {
				c[rule]++
				*changed = true
				v[k] = placeholder(rule)
				continue
			}
			v[k] = r.walk(val, c, changed)
		}
		return v
	}
	return v
}

func (r *Redactor) secretKey(k string) (string, bool) {
	for _, rule := range r.keys {
		if rule.re.MatchString(k) {
			return rule.Name, true
		}
	}
	return "", false
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	}
	return false
}

// Redact returns e with its args, result and message redacted and
// Redactions listing every rule that fired, per field, sorted. It
// implements audit.Redactor.
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
	e.Message = r.text1(e.Message, c)
	add("message", c)
	if len(found) == 0 {
		return e, nil
	}
	e.Redactions = append(slices.Clone(e.Redactions), found...)
	slices.SortFunc(e.Redactions, func(a, b warden.Redaction) int {
		return cmp.Or(cmp.Compare(a.Field, b.Field), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Count, b.Count))
	})
	return e, nil
}

// check runs a named checksum over the digits of s.
func check(name, s string) bool {
	var digits []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i]-'0')
		}
	}
	switch name {
	case "phone":
		return len(digits) >= 8 && len(digits) <= 15
	case "luhn":
		return len(digits) >= 13 && len(digits) <= 19 && luhn(digits)
	case "ssn":
		if len(digits) != 9 {
			return false
		}
		area := int(digits[0])*100 + int(digits[1])*10 + int(digits[2])
		group := int(digits[3])*10 + int(digits[4])
		serial := int(digits[5])*1000 + int(digits[6])*100 + int(digits[7])*10 + int(digits[8])
		return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
	}
	return false
}

func luhn(digits []byte) bool {
	sum := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i])
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
