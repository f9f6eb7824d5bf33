// Redacting base64 tokens whose decoded text holds a secret.

package redact

import (
	"encoding/base64"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxDepth bounds how deep decoded text (base64 inside base64) is
// searched.
const maxDepth = 2

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
