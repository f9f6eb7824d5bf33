// The checks a match must pass: Luhn and card brands, US SSN, phone digit counts, IBAN mod-97 and basic-auth decoding.

package redact

import (
	"strings"
)

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
