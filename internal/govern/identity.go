package govern

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/confusable"
)

// NameForm says how approver and requester names are compared: as typed
// (runs started before names became identities) or as identities. The
// workflow stamps the form on each request it opens (ApprovalRequest.NameForm)
// so a replayed old run decides as it did.
type NameForm int

const (
	// NamesAsTyped compares names byte for byte after trimming spaces.
	NamesAsTyped NameForm = 0
	// NamesAsIdentities compares names as identities (see ParseName):
	// "Dana", "DANA", "dana\u200b" and a Cyrillic "dаna" are one person,
	// or refused.
	NamesAsIdentities NameForm = 1
)

// Name is an approver's or requester's name read as an identity.
type Name struct {
	// Display is the name as it should be recorded: trimmed, NFKC.
	Display string
	// Key is what two names are compared by: Display case-folded, with each
	// Cyrillic or Greek letter that renders like a Latin one replaced by it.
	Key string
}

var fold = cases.Fold()

// ParseName reads s as an identity. It refuses an empty name, one holding
// a control, format or invisible character (zero-width spaces and joiners,
// bidi controls, soft hyphens: they make two names that render alike
// differ), and one mixing Latin letters with Cyrillic or Greek letters that
// look like Latin ones ("dаna" with a Cyrillic "а"); the error names the
// character.
func ParseName(s string) (Name, error) {
	s = norm.NFKC.String(strings.TrimSpace(s))
	if s == "" {
		return Name{}, fmt.Errorf("the name is empty")
	}
	var latin, lookalike rune
	for _, r := range s {
		switch {
		case confusable.Invisible(r), unicode.Is(unicode.Cc, r), unicode.Is(unicode.Cf, r),
			unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
			return Name{}, fmt.Errorf("the name %q holds the invisible or control character U+%04X: type it without", s, r)
		case unicode.Is(unicode.Latin, r):
			latin = r
		default:
			if _, ok := confusable.Latin(r); ok {
				lookalike = r
			}
		}
	}
	if latin != 0 && lookalike != 0 {
		return Name{}, fmt.Errorf("the name %q mixes Latin letters with %q (U+%04X), a %s letter that looks like a Latin one: type it in one script",
			s, lookalike, lookalike, scriptOf(lookalike))
	}
	folded := fold.String(s)
	var key strings.Builder
	for _, r := range folded {
		if a, ok := confusable.Latin(r); ok {
			key.WriteByte(byte(unicode.ToLower(rune(a))))
			continue
		}
		key.WriteRune(r)
	}
	return Name{Display: s, Key: key.String()}, nil
}

func scriptOf(r rune) string {
	if unicode.Is(unicode.Greek, r) {
		return "Greek"
	}
	return "Cyrillic"
}

// Same reports whether a and b name the same person under f. Under
// NamesAsIdentities a name that does not parse is the same as nothing but
// its exact self (it is refused wherever it is offered as an approver).
func (f NameForm) Same(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == b {
		return a != ""
	}
	if f == NamesAsTyped {
		return false
	}
	na, errA := ParseName(a)
	nb, errB := ParseName(b)
	return errA == nil && errB == nil && na.Key == nb.Key
}

// Permits reports whether name may approve a call requested by requester
// under approvers, with names compared under f: "*" is anyone but the
// requester; the requester only with AllowSelfApproval.
func (f NameForm) Permits(approvers warden.Approvers, name, requester string) bool {
	_, ok := f.Resolve(approvers, name, requester)
	return ok
}

// Resolve is Permits that also returns the name to record: the policy's
// own spelling when name matches a listed user, else name's Display form
// (as typed, under NamesAsTyped).
func (f NameForm) Resolve(approvers warden.Approvers, name, requester string) (string, bool) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", false
	}
	display := name
	if f == NamesAsIdentities {
		n, err := ParseName(name)
		if err != nil {
			return "", false
		}
		display = n.Display
	}
	if f.Same(name, requester) && !approvers.AllowSelfApproval {
		return "", false
	}
	anyone := false
	for _, u := range approvers.Users {
		if u == "*" {
			anyone = true
			continue
		}
		if f.Same(u, name) {
			return u, true
		}
	}
	if anyone {
		return display, true
	}
	return "", false
}

// Permits is NamesAsIdentities.Permits: the rule Enforce applies to the
// approvers of an approval's evidence.
func Permits(approvers warden.Approvers, name, requester string) bool {
	return NamesAsIdentities.Permits(approvers, name, requester)
}
