package warden

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Summary templates (ToolSpec.Summary) say how a tool call is shown to
// people, in one line: the Temporal Web UI's summary of the activity that
// runs it. A template is text with placeholders over the call's top-level
// arguments:
//
//	{name}        the argument: a string as is, a number as its literal,
//	              true/false, an object or array as compact JSON
//	{name|cents}  a number of minor units as units with two decimals (25000 → 250.00)
//	{name|join}   an array's elements, each shown as {name} shows a value, separated by spaces
//	{{ and }}     a literal { and }
//
// Names match [A-Za-z_][A-Za-z0-9_]*. The tool name is not implied: write
// it into the template ("issue_refund {amount_cents|cents} ..."). The
// result is a pure function of the template and the call, so it is the
// same on every worker and every replay.
const (
	SummaryFilterCents = "cents"
	SummaryFilterJoin  = "join"
)

// maxSummaryLen is the longest summary, in bytes; longer ones are cut and end in "...".
const maxSummaryLen = 120

// summaryPart is a piece of a parsed template: literal text, or a
// placeholder (arg set).
type summaryPart struct {
	text   string
	arg    string
	filter string
}

// ParseSummary checks a summary template and returns the argument names
// it refers to, in order of first use.
func ParseSummary(template string) ([]string, error) {
	parts, err := parseSummary(template)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range parts {
		if p.arg != "" && !slices.Contains(names, p.arg) {
			names = append(names, p.arg)
		}
	}
	return names, nil
}

func parseSummary(template string) ([]summaryPart, error) {
	var parts []summaryPart
	var text strings.Builder
	for i := 0; i < len(template); {
		c := template[i]
		switch {
		case c == '{' && strings.HasPrefix(template[i:], "{{"):
			text.WriteByte('{')
			i += 2
		case c == '}' && strings.HasPrefix(template[i:], "}}"):
			text.WriteByte('}')
			i += 2
		case c == '}':
			return nil, fmt.Errorf("summary template: unmatched } at byte %d (write }} for a literal })", i)
		case c == '{':
			end := strings.IndexByte(template[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("summary template: unclosed { at byte %d (write {{ for a literal {)", i)
			}
			name, filter, _ := strings.Cut(template[i+1:i+end], "|")
			if !validSummaryArg(name) {
				return nil, fmt.Errorf("summary template: placeholder {%s}: argument name %q must match [A-Za-z_][A-Za-z0-9_]*", template[i+1:i+end], name)
			}
			switch filter {
			case "", SummaryFilterCents, SummaryFilterJoin:
			default:
				return nil, fmt.Errorf("summary template: placeholder {%s}: unknown filter %q (want %s or %s)", template[i+1:i+end], filter, SummaryFilterCents, SummaryFilterJoin)
			}
			if text.Len() > 0 {
				parts = append(parts, summaryPart{text: text.String()})
				text.Reset()
			}
			parts = append(parts, summaryPart{arg: name, filter: filter})
			i += end + 1
		default:
			text.WriteByte(c)
			i++
		}
	}
	if text.Len() > 0 {
		parts = append(parts, summaryPart{text: text.String()})
	}
	return parts, nil
}

func validSummaryArg(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}

// SummarizeCall is the one-line summary of call by template (see
// ParseSummary for the syntax). Arguments named in redact show as
// "[redacted]". When the template is empty or malformed, the arguments
// are not a JSON object, or a placeholder's argument is missing, null or
// of the wrong kind for its filter, the summary is the tool name. It is
// at most 120 bytes: a longer one is cut to 117 and ends in "...".
func SummarizeCall(template string, call ToolCall, redact []string) string {
	s, ok := renderSummary(template, call.Args, redact)
	if !ok {
		s = call.Name
	}
	if len(s) > maxSummaryLen {
		return s[:maxSummaryLen-3] + "..."
	}
	return s
}

// Summarize is SummarizeCall with the spec's template.
func (s ToolSpec) Summarize(call ToolCall, redact []string) string {
	return SummarizeCall(s.Summary, call, redact)
}

func renderSummary(template string, raw json.RawMessage, redact []string) (string, bool) {
	if template == "" {
		return "", false
	}
	parts, err := parseSummary(template)
	if err != nil {
		return "", false
	}
	var args map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&args); err != nil || args == nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range parts {
		if p.arg == "" {
			b.WriteString(p.text)
			continue
		}
		v, ok := args[p.arg]
		if !ok || v == nil {
			return "", false
		}
		if slices.Contains(redact, p.arg) {
			b.WriteString("[redacted]")
			continue
		}
		switch p.filter {
		case SummaryFilterCents:
			n, ok := v.(json.Number)
			if !ok {
				return "", false
			}
			f, err := strconv.ParseFloat(string(n), 64)
			if err != nil {
				return "", false
			}
			fmt.Fprintf(&b, "%.2f", f/100)
		case SummaryFilterJoin:
			items, ok := v.([]any)
			if !ok {
				return "", false
			}
			for i, item := range items {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(summaryValue(item))
			}
		default:
			b.WriteString(summaryValue(v))
		}
	}
	return b.String(), true
}

// summaryValue shows one decoded JSON value.
func summaryValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(b.String())
	}
}
