// Package canon is Warden's one canonical JSON form: what the audit chain
// hashes, what approval requests bind (ArgsHash), what seals and export
// manifests sign. It has no dependencies beyond the standard library, so
// every layer (types, governance, audit) can use the same bytes.
//
// The form agrees with RFC 8785 (JCS) on whitespace, string escaping and
// duplicate-free objects; it differs on purpose in two places, documented
// in docs/audit.md: numbers are exact decimals without exponent (JCS
// rounds through IEEE doubles, which would change an amount of
// 12345678901234567890 cents), and keys sort by UTF-8 bytes (JCS: UTF-16
// code units; the orders differ only between U+E000–U+FFFF and
// supplementary characters).
package canon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxNumberExponent bounds the decimal exponent of a JSON number: the
// canonical form writes numbers without exponent, so 1e1000000 would be a
// megabyte of zeros.
const maxNumberExponent = 1000

// JSON re-encodes the JSON value raw in Warden's canonical form:
// no insignificant whitespace; object keys sorted by their UTF-8 bytes
// (duplicate keys: the last one wins, as in PostgreSQL jsonb); strings with
// only '"', '\\' and control characters below U+0020 escaped (\b \f \n \r \t,
// others as \u00xx) and everything else as literal UTF-8; numbers as exact
// decimals without exponent, without leading zeros, without trailing zeros
// in the fraction and with "-0" written "0". Both backends store this form,
// and re-encoding what PostgreSQL's jsonb returns gives the same bytes.
func JSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("canonical json: trailing data after the value")
	}
	var b bytes.Buffer
	if err := writeCanonical(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeCanonical(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case json.Number:
		n, err := canonicalNumber(string(v))
		if err != nil {
			return err
		}
		b.WriteString(n)
	case string:
		writeCanonicalString(b, v)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeCanonical(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonicalString(b, k)
			b.WriteByte(':')
			if err := writeCanonical(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("canonical json: unexpected %T", v)
	}
	return nil
}

const hexDigits = "0123456789abcdef"

func writeCanonicalString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString("\ufffd")
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
			continue
		}
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
		i++
	}
	b.WriteByte('"')
}

// canonicalNumber writes the JSON number s as an exact decimal without
// exponent.
func canonicalNumber(s string) (string, error) {
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, ok := new(big.Int).SetString(strings.TrimPrefix(s[i+1:], "+"), 10)
		if !ok || e.CmpAbs(big.NewInt(maxNumberExponent)) > 0 {
			return "", fmt.Errorf("canonical json: number %.40s has an exponent beyond ±%d", s, maxNumberExponent)
		}
		exp = int(e.Int64())
	}
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	// value = digits × 10^(exp - len(frac))
	point := len(intPart) + exp // position of the decimal point in digits
	if point < 0 {
		digits = strings.Repeat("0", -point) + digits
		point = 0
	}
	if point > len(digits) {
		digits += strings.Repeat("0", point-len(digits))
	}
	ip := strings.TrimLeft(digits[:point], "0")
	fp := strings.TrimRight(digits[point:], "0")
	if ip == "" {
		ip = "0"
	}
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out, nil
}
