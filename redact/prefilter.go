// The built-in rules' cheap prefilters, which skip a regexp that cannot match.

package redact

import (
	"strings"
)

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
