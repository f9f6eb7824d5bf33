// Rule and the built-in rules (DefaultRules), with which of them find personal data.

package redact

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

// builtin maps the built-in rules by name; a prefilter applies only to an
// unchanged built-in rule.
var builtin = func() map[string]Rule {
	m := map[string]Rule{}
	for _, r := range DefaultRules() {
		m[r.Name] = r
	}
	return m
}()
