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
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

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
// secret formats first, then personal data. Every rule matches folded text
// (look-alike characters, invisible characters and percent-escapes
// normalised; see fold) and redacts the original bytes behind the match.
func DefaultRules() []Rule {
	return []Rule{
		{Name: "private_key", Pattern: `-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[\s\S]*)`},
		{Name: "secret_key", Key: `(?i)(?:password|passwd|secret|api[_-]?key|apikey|secret[_-]?(?:access[_-]?)?key|private[_-]?key|token|authorization|cookie|credentials?)$|(?:^|[_.\s-])(?:pass|pwd)$`},
		{Name: "jwt", Pattern: `\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}`},
		{Name: "github_token", Pattern: `\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`},
		{Name: "slack_token", Pattern: `\bxox[abprs]-[A-Za-z0-9-]{10,}`},
		{Name: "api_key", Pattern: `\b(?:sk|rk|pk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}|\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_-]{35}`},
		// No word boundaries: a key glued between letters is still a key.
		{Name: "aws_access_key", Pattern: `(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[0-9A-Z]{16}`},
		{Name: "aws_secret_key", Pattern: `(?i)\baws_?secret_?access_?key\b["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})`, Group: 1},
		{Name: "basic_auth", Pattern: `(?i)\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})`, Group: 1, Check: "basic"},
		{Name: "bearer_token", Pattern: `(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/=-]{16,})`, Group: 1},
		{Name: "url_password", Pattern: `(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@"]+:([^/\s@"]+)@`, Group: 1},
		// NAME=value, name: value, "name": "value" and its escaped form
		// inside a JSON string, where the name ends in a secret word
		// (DB_PASSWORD, client_secret, X-Api-Key, PGPASSWORD, SECRET_TOKEN).
		{Name: "secret_assignment", Pattern: `(?i)\b(?:[a-z0-9_.-]*?(?:password|passwd|secret|api[_-]?key|apikey|access[_-]?key|token|credentials?)|(?:[a-z0-9]+[_.-])*(?:pass|pwd))\\?["']?\s*[:=]\s*\\?["']?([^\s"'\\,;&]{4,})`, Group: 1},
		{Name: "iban", Pattern: `\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b`, Check: "iban"},
		{Name: "card_number", Pattern: `\b\d(?:[ .-]?\d){12,18}\b`, Check: "luhn"},
		{Name: "us_ssn", Pattern: `\b\d{3}-\d{2}-\d{4}\b|\b\d{3} \d{2} \d{4}\b`, Check: "ssn"},
		{Name: "email", Pattern: `\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b`},
		{Name: "phone", Pattern: `\+[1-9]\d{0,2}(?:[\s.-]?\(?\d{1,4}\)?){2,6}\b|(?:\+[1-9]\d{0,2}[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b`, Check: "phone"},
		// National numbers with a trunk prefix: 030 12345678, 0171 1234567,
		// 020 7946 0958, 01 23 45 67 89 (one kind of separator throughout).
		{Name: "phone_local", Pattern: `\b0[1-9]\d{0,3}(?:[ ./-]\d{2,8}){1,4}\b`, Check: "phone_local"},
	}
}

// piiRules are the built-in rules for personal data. The other built-in
// rules find secrets, which are redacted from every field, identities
// included; personal data is left in the fields that name who acted.
var piiRules = map[string]bool{"iban": true, "card_number": true, "us_ssn": true, "email": true, "phone": true, "phone_local": true}

type compiled struct {
	Rule
	re *regexp.Regexp
	// worth is a cheap test that must pass for the regexp to possibly
	// match (nil: always run it). Built-in rules have one.
	worth func(t *text) bool
	// secret is false for the built-in personal-data rules.
	secret bool
}

// text is a folded string being redacted, with lazily computed facts the
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
	runCard  = iota // spaces, dots and dashes
	runSSN          // spaces and dashes
	runPhone        // spaces, dots, dashes, slashes, parentheses, plus
	runKinds
)

// sepKinds[c] has bit k set when c may separate digits in a run of kind k.
var sepKinds = func() (t [256]uint8) {
	for k, seps := range [runKinds]string{runCard: " .-", runSSN: " -", runPhone: " .-/()+"} {
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
	"basic_auth":     func(t *text) bool { return strings.Contains(t.lowered(), "basic") },
	"bearer_token": func(t *text) bool {
		l := t.lowered()
		return strings.Contains(l, "bearer") || strings.Contains(l, "token")
	},
	"url_password": func(t *text) bool { return strings.Contains(t.s, "://") },
	"secret_assignment": func(t *text) bool {
		l := t.lowered()
		return strings.ContainsAny(l, ":=") && (strings.Contains(l, "pass") || strings.Contains(l, "pwd") ||
			strings.Contains(l, "secret") || strings.Contains(l, "key") || strings.Contains(l, "token") ||
			strings.Contains(l, "cred"))
	},
	"iban":        func(t *text) bool { return t.digitRun(runCard) >= 2 },
	"card_number": func(t *text) bool { return t.digitRun(runCard) >= 13 },
	"us_ssn":      func(t *text) bool { return t.digitRun(runSSN) >= 9 },
	"email":       func(t *text) bool { return strings.Contains(t.s, "@") },
	"phone":       func(t *text) bool { return t.digitRun(runPhone) >= 8 },
	"phone_local": func(t *text) bool { return t.digitRun(runPhone) >= 9 },
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

// maxDepth bounds how deep decoded text (base64 inside base64) is
// searched.
const maxDepth = 2

// Text redacts s and returns the result and the matches per rule.
func (r *Redactor) Text(s string) (string, map[string]int) {
	c := counts{}
	return r.text1(s, c, allRules, 0), c
}

func (r *Redactor) text1(s string, c counts, sc scope, depth int) string {
	f := fold(s)
	t := &text{s: f.s}
	for _, rule := range r.text {
		if sc == secretRules && !rule.secret {
			continue
		}
		if rule.worth != nil && !rule.worth(t) {
			continue
		}
		if out := rule.apply(s, f, c); out != s {
			s = out
			f = fold(s)
			t = &text{s: f.s}
		}
	}
	return r.encoded(s, c, sc, depth)
}

// spans returns the parts of the folded text fs that rule redacts: its
// matches (or their capture group) that pass its check. When a checked
// match fails, the runs inside it are tried on their own, so digits put
// next to a card number ("+14155550132 4111 1111 1111 1111") do not hide
// it.
func (rule compiled) spans(fs string) [][2]int {
	var out [][2]int
	if rule.Check == "" || rule.Group > 0 {
		for _, m := range rule.re.FindAllStringSubmatchIndex(fs, -1) {
			start, end := m[0], m[1]
			if rule.Group > 0 {
				start, end = m[2*rule.Group], m[2*rule.Group+1]
			}
			if start < 0 || end <= start || (rule.Check != "" && !check(rule.Check, fs[start:end])) {
				continue
			}
			out = append(out, [2]int{start, end})
		}
		return out
	}
	// A checked rule: when a match fails its check, look inside it for
	// shorter runs that pass, and search again from its second word, since
	// the greedy match may have swallowed the start of a real one.
	tried := -1 // runs ending here or before were tried inside a failed match
	for pos := 0; pos < len(fs); {
		loc := rule.re.FindStringIndex(fs[pos:])
		if loc == nil {
			break
		}
		start, end := pos+loc[0], pos+loc[1]
		if end <= start {
			pos = end + 1
			continue
		}
		if check(rule.Check, fs[start:end]) {
			out = append(out, [2]int{start, end})
			pos = end
			continue
		}
		if in := rule.inner(fs, start, end, tried); len(in) > 0 {
			out = append(out, in...)
			pos = in[len(in)-1][1]
			continue
		}
		tried = max(tried, end)
		pos = nextWord(fs, start, end)
	}
	return out
}

// nextWord is where the second word of fs[start:end] begins, or end.
func nextWord(fs string, start, end int) int {
	i := start
	for i < end && isAlnum(fs[i]) {
		i++
	}
	for i < end && !isAlnum(fs[i]) {
		i++
	}
	if i >= end {
		return end
	}
	return i
}

// inner finds, in the failed match fs[start:end], the longest runs of whole
// words (letters and digits between separators), leftmost first, that the
// rule matches entirely and its check accepts. Runs ending at or before
// tried were tried before and are skipped, which keeps the search linear.
func (rule compiled) inner(fs string, start, end, tried int) [][2]int {
	var words [][2]int
	for i := start; i < end; {
		if !isAlnum(fs[i]) {
			i++
			continue
		}
		j := i
		for j < end && isAlnum(fs[j]) {
			j++
		}
		words = append(words, [2]int{i, j})
		i = j
	}
	var out [][2]int
	for i := 0; i < len(words); {
		found := false
		for j := len(words) - 1; j >= i; j-- {
			if i == 0 && j == len(words)-1 {
				continue // the whole match, which failed
			}
			if words[j][1] <= tried {
				break
			}
			sub := fs[words[i][0]:words[j][1]]
			if !check(rule.Check, sub) {
				continue
			}
			if loc := rule.re.FindStringIndex(sub); loc == nil || loc[0] != 0 || loc[1] != len(sub) {
				continue
			}
			out = append(out, [2]int{words[i][0], words[j][1]})
			i, found = j+1, true
			break
		}
		if !found {
			i++
		}
	}
	return out
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// apply redacts the matches of rule in the folded text f of s.
func (rule compiled) apply(s string, f folded, c counts) string {
	var b strings.Builder
	last := 0
	for _, sp := range rule.spans(f.s) {
		os, oe := f.span(sp[0], sp[1])
		if os < last || strings.Contains(s[os:oe], placeholderPrefix) {
			continue // never redact a redaction again
		}
		b.WriteString(s[last:os])
		b.WriteString(placeholder(rule.Name))
		last = oe
		c[rule.Name]++
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// hit is one rule's match in a text, as a byte span of the original.
type hit struct {
	start, end int
	rule       string
}

// find returns every match of every rule in s without redacting.
func (r *Redactor) find(s string) []hit {
	f := fold(s)
	t := &text{s: f.s}
	var hits []hit
	for _, rule := range r.text {
		if rule.worth != nil && !rule.worth(t) {
			continue
		}
		for _, sp := range rule.spans(f.s) {
			os, oe := f.span(sp[0], sp[1])
			if !strings.Contains(s[os:oe], placeholderPrefix) {
				hits = append(hits, hit{os, oe, rule.Name})
			}
		}
	}
	return hits
}

// b64tokens returns the runs of s that may be base64 (standard or URL
// alphabet, optional padding) long enough to hide a key.
func b64tokens(s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); {
		if !isB64(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isB64(s[j]) {
			j++
		}
		if j-i >= 16 {
			k := j
			for k < len(s) && k < j+2 && s[k] == '=' {
				k++
			}
			out = append(out, [2]int{i, k})
			j = k
		}
		i = j
	}
	return out
}

func isB64(c byte) bool { return isAlnum(c) || c == '+' || c == '/' || c == '_' || c == '-' }

// encoded redacts base64 tokens whose decoded text holds something a rule
// finds: the whole token is replaced, under the inner rule's name.
func (r *Redactor) encoded(s string, c counts, sc scope, depth int) string {
	if depth >= maxDepth || len(s) < 16 {
		return s
	}
	locs := b64tokens(s)
	if len(locs) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		plain, ok := decodeBase64(s[l[0]:l[1]])
		if !ok {
			continue
		}
		inner := counts{}
		if r.text1(plain, inner, sc, depth+1) == plain {
			continue
		}
		names := make([]string, 0, len(inner))
		for name, n := range inner {
			names = append(names, name)
			c[name] += n
		}
		slices.Sort(names)
		b.WriteString(s[last:l[0]])
		b.WriteString(placeholder(names[0]))
		last = l[1]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// decodeBase64 decodes tok when it is base64 of printable text.
func decodeBase64(tok string) (string, bool) {
	raw := strings.TrimRight(tok, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(raw, "-_") {
		if strings.ContainsAny(raw, "+/") {
			return "", false
		}
		enc = base64.RawURLEncoding
	}
	if len(raw)%4 == 1 {
		return "", false
	}
	out, err := enc.DecodeString(raw)
	if err != nil || !utf8.Valid(out) {
		return "", false
	}
	for _, r := range string(out) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return "", false
		}
	}
	return string(out), true
}

// JSON redacts every string and number in the JSON value raw, every object
// key, and every value under a secret key, and returns valid JSON.
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
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("redact: data after the JSON value")
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
		s := r.text1(v, c, allRules, 0)
		if s != v {
			*changed = true
		}
		return s
	case json.Number:
		s := r.text1(string(v), c, allRules, 0)
		if s != string(v) {
			*changed = true
			return s
		}
		return v
	case []any:
		r.spanning(v, c, changed)
		for i := range v {
			v[i] = r.walk(v[i], c, changed)
		}
		return v
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // deterministic placeholders for redacted keys
		for _, k := range keys {
			val := v[k]
			if rule, ok := r.secretKey(k); ok && !isEmpty(val) {
				c[rule]++
				*changed = true
				v[k] = placeholder(rule)
				continue
			}
			val = r.walk(val, c, changed)
			// A key can be a secret too ({"sk-proj-…": …}).
			if nk := r.text1(k, c, allRules, 0); nk != k {
				*changed = true
				delete(v, k)
				for n := 2; ; n++ {
					if _, taken := v[nk]; !taken {
						break
					}
					nk = strings.TrimSuffix(nk, fmt.Sprintf("#%d", n-1)) + fmt.Sprintf("#%d", n)
				}
				k = nk
			}
			v[k] = val
		}
		return v
	}
	return v
}

// spanWindow is how many neighbouring array items a match may span, and
// spanBytes how much of each item's edge is searched for one.
const (
	spanWindow = 4
	spanBytes  = 512
)

// spanning redacts, whole, the consecutive string items of an array that a
// match spans: a key split across argv items ("sk-pro", "j-…") is found in
// their concatenation.
func (r *Redactor) spanning(items []any, c counts, changed *bool) {
	if len(items) < 2 {
		return
	}
	marked := make([]string, len(items))
	for i := range items {
		if _, ok := items[i].(string); !ok {
			continue
		}
		// The window: the tail of item i, then whole (or the head of)
		// following string items.
		var b strings.Builder
		first := items[i].(string)
		if len(first) > spanBytes {
			first = first[len(first)-spanBytes:]
		}
		b.WriteString(first)
		bounds := []int{b.Len()} // bounds[k]: end of the k-th item in the window
		for j := i + 1; j < len(items) && j < i+spanWindow; j++ {
			s, ok := items[j].(string)
			if !ok {
				break
			}
			if len(s) > spanBytes {
				s = s[:spanBytes]
			}
			b.WriteString(s)
			bounds = append(bounds, b.Len())
		}
		if len(bounds) < 2 {
			continue
		}
		for _, h := range r.find(b.String()) {
			if h.end <= bounds[0] {
				continue // within item i alone: the item's own walk finds it
			}
			if h.start >= bounds[0] {
				continue // starts in a later item: its own window finds it
			}
			for k, end := range bounds {
				if k == 0 || bounds[k-1] < h.end {
					marked[i+k] = h.rule
				}
				if end >= h.end {
					break
				}
			}
		}
	}
	for i, rule := range marked {
		if rule != "" {
			items[i] = placeholder(rule)
			c[rule]++
			*changed = true
		}
	}
}

func (r *Redactor) secretKey(k string) (string, bool) {
	for _, rule := range r.keys {
		if rule.re.MatchString(fold(k).s) {
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

// check runs a named check over a match.
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
	case "phone_local":
		return len(digits) >= 9 && len(digits) <= 11 && oneSeparator(s)
	case "luhn":
		return len(digits) >= 13 && len(digits) <= 19 && cardBrand(digits) && luhn(digits)
	case "ssn":
		if len(digits) != 9 {
			return false
		}
		area := int(digits[0])*100 + int(digits[1])*10 + int(digits[2])
		group := int(digits[3])*10 + int(digits[4])
		serial := int(digits[5])*1000 + int(digits[6])*100 + int(digits[7])*10 + int(digits[8])
		return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
	case "iban":
		return ibanValid(s)
	case "basic":
		plain, ok := decodeBase64(s)
		return ok && strings.Contains(plain, ":")
	}
	return false
}

// oneSeparator reports whether every non-digit of s is the same byte.
func oneSeparator(s string) bool {
	var sep byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '0' || c > '9' {
			if sep != 0 && c != sep {
				return false
			}
			sep = c
		}
	}
	return true
}

// cardBrand reports whether digits start like a payment card of their
// length (Visa, Mastercard, American Express, Diners, JCB, Discover,
// UnionPay), which keeps timestamps and counters that happen to pass Luhn.
func cardBrand(d []byte) bool {
	n := len(d)
	p2 := int(d[0])*10 + int(d[1])
	p4 := p2*100 + int(d[2])*10 + int(d[3])
	switch d[0] {
	case 2:
		return n == 16 && p4 >= 2221 && p4 <= 2720
	case 3:
		return (n == 15 && (p2 == 34 || p2 == 37)) || (n == 14 && (p2 == 30 || p2 == 36 || p2 == 38 || p2 == 39)) || (n == 16 && p2 == 35)
	case 4:
		return n == 13 || n == 16 || n == 19
	case 5:
		return n == 16 && p2 >= 51 && p2 <= 55
	case 6:
		return n >= 16 && (p2 == 60 || p2 == 62 || p2 == 64 || p2 == 65)
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

// ibanValid checks an IBAN's length and ISO 7064 mod-97 check digits.
func ibanValid(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	rem := 0
	for _, c := range s[4:] + s[:4] {
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}
