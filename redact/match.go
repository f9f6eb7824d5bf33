// Matching a compiled rule against text: its spans, the runs inside a failed checked match, and applying the redaction.

package redact

import (
	"regexp"
	"strings"
)

type compiled struct {
	Rule
	re *regexp.Regexp
	// worth is a cheap test that must pass for the regexp to possibly
	// match (nil: always run it). Built-in rules have one.
	worth func(t *text) bool
	// secret is false for the built-in personal-data rules.
	secret bool
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
