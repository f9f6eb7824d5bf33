package redact

import (
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/wardenhq/warden/internal/confusable"
)

// folded is text prepared for matching: look-alike characters replaced by
// the ASCII they imitate, invisible characters dropped and percent-escapes
// of printable ASCII decoded, so that "sk‐proj" (a Unicode hyphen),
// "ｓｋ-proj" (fullwidth), "sk-pro\u200bj" and "jane%40example.com" match
// the same rules as their plain forms. Rules run on s; a match is mapped
// back to the original text through from and to, so the redaction covers
// the original bytes that produced it.
type folded struct {
	s string
	// from[i] and to[i] are the span of the original text that produced
	// byte i of s. Both are nil when s is the original text.
	from, to []int
}

// span maps the match [start, end) of f.s to the original text.
func (f folded) span(start, end int) (int, int) {
	if f.from == nil {
		return start, end
	}
	return f.from[start], f.to[end-1]
}

// needsFold reports whether s has anything fold would change: a non-ASCII
// byte or a percent sign.
func needsFold(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf || s[i] == '%' {
			return true
		}
	}
	return false
}

func fold(s string) folded {
	if !needsFold(s) {
		return folded{s: s}
	}
	out := make([]byte, 0, len(s))
	from := make([]int, 0, len(s))
	to := make([]int, 0, len(s))
	emit := func(b []byte, start, end int) {
		for _, c := range b {
			out = append(out, c)
			from = append(from, start)
			to = append(to, end)
		}
	}
	var buf [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			if c := unhex(s[i+1])<<4 | unhex(s[i+2]); c >= 0x20 && c < 0x7f {
				emit([]byte{c}, i, i+3)
				i += 3
				continue
			}
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r < utf8.RuneSelf:
			emit([]byte{byte(r)}, i, i+n)
		case confusable.Invisible(r):
			// dropped: zero-width spaces and joiners, soft hyphens, BOMs
		case confusable.Dash(r):
			emit([]byte{'-'}, i, i+n)
		default:
			if a, ok := confusable.Latin(r); ok {
				emit([]byte{a}, i, i+n)
				break
			}
			// NFKC folds fullwidth forms, ligatures, superscripts and the
			// like to what they stand for; keep the fold only when it is
			// ASCII (the rules are written for ASCII).
			if k := norm.NFKC.String(string(r)); k != string(r) && isASCII(k) {
				emit([]byte(k), i, i+n)
				break
			}
			emit(buf[:utf8.EncodeRune(buf[:], r)], i, i+n)
		}
		i += n
	}
	if len(out) == 0 {
		// Only invisible characters: nothing to match, keep a mapping-free
		// empty text.
		return folded{s: ""}
	}
	return folded{s: string(out), from: from, to: to}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
