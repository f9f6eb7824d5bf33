// Package confusable holds the one table of characters that look like
// others: invisible ones (zero-width spaces and joiners, soft hyphens,
// BOMs, variation selectors), Unicode dashes, and the Cyrillic and Greek
// letters that render like Latin ones. Redaction folds secrets with it (a
// key's prefix written with a Cyrillic "с" is still a key) and governance
// compares approver names with it (a Cyrillic "dаna" is still dana).
package confusable

import "unicode"

// Invisible reports whether r renders as nothing.
func Invisible(r rune) bool {
	switch r {
	case 0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F,
		0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064,
		0x2066, 0x2067, 0x2068, 0x2069, 0x3164, 0xFEFF, 0xFFA0:
		return true
	}
	return unicode.Is(unicode.Variation_Selector, r)
}

// Dash reports whether r is a dash that renders like '-'.
func Dash(r rune) bool {
	switch r {
	case 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2043, 0x2212, 0x2E3A, 0x2E3B, 0xFE58, 0xFE63, 0xFF0D:
		return true
	}
	return false
}

// Latin is the ASCII letter the Cyrillic or Greek letter r renders like,
// if any.
func Latin(r rune) (byte, bool) {
	a, ok := lookalike[r]
	return a, ok
}

var lookalike = map[rune]byte{
	'а': 'a', 'в': 'b', 'с': 'c', 'е': 'e', 'һ': 'h', 'і': 'i', 'ј': 'j', 'к': 'k', 'м': 'm', 'н': 'h',
	'о': 'o', 'р': 'p', 'ѕ': 's', 'т': 't', 'у': 'y', 'х': 'x', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w',
	'А': 'A', 'В': 'B', 'С': 'C', 'Е': 'E', 'Н': 'H', 'І': 'I', 'Ј': 'J', 'К': 'K', 'М': 'M',
	'О': 'O', 'Р': 'P', 'Ѕ': 'S', 'Т': 'T', 'Х': 'X', 'Ү': 'Y',
	'α': 'a', 'ο': 'o', 'ρ': 'p', 'κ': 'k', 'ν': 'v', 'τ': 't', 'υ': 'u', 'ι': 'i',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N',
	'Ο': 'O', 'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
}
