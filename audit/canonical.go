package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

// HashVersion is the version of the seal encoding (field "v" of the hashed
// seal) and the first event encoding; EventHashVersion is the events' now.
// docs/audit.md specifies both.
const HashVersion = 1

// maxNumberExponent bounds the decimal exponent of a JSON number: the
// canonical form writes numbers without exponent, so 1e1000000 would be a
// megabyte of zeros.
const maxNumberExponent = 1000

// CanonicalJSON re-encodes the JSON value raw in Warden's canonical form:
// no insignificant whitespace; object keys sorted by their UTF-8 bytes
// (duplicate keys: the last one wins, as in PostgreSQL jsonb); strings with
// only '"', '\\' and control characters below U+0020 escaped (\b \f \n \r \t,
// others as \u00xx) and everything else as literal UTF-8; numbers as exact
// decimals without exponent, without leading zeros, without trailing zeros
// in the fraction and with "-0" written "0". Both backends store this form,
// and re-encoding what PostgreSQL's jsonb returns gives the same bytes.
func CanonicalJSON(raw []byte) ([]byte, error) {
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

// canonicalTime is how OccurredAt is hashed: UTC RFC 3339 with exactly six
// fraction digits.
const canonicalTime = "2006-01-02T15:04:05.000000Z"

// EventHashVersion is the canonical event encoding the stores write: 2
// hashes seq and recorded_at too. Rows written with version 1 keep it (the
// hash_version column) and verify as they did.
const EventHashVersion = 2

// hashedEventV2 is hashedEvent with what the store assigns on append.
type hashedEventV2 struct {
	hashedEvent
	Seq        int64  `json:"seq"`
	RecordedAt string `json:"recorded_at"`
}

// hashedEvent is the object whose canonical JSON the chain hashes (version
// 1). Every field is always present.
type hashedEvent struct {
	V              int                `json:"v"`
	EventID        string             `json:"event_id"`
	EventType      string             `json:"event_type"`
	Tenant         string             `json:"tenant"`
	WorkflowID     string             `json:"workflow_id"`
	RunID          string             `json:"run_id"`
	Step           int                `json:"step"`
	CallID         string             `json:"call_id"`
	Actor          string             `json:"actor"`
	Tool           string             `json:"tool"`
	Args           json.RawMessage    `json:"args"`
	Result         json.RawMessage    `json:"result"`
	Decision       string             `json:"decision"`
	Risk           string             `json:"risk"`
	Reasons        []string           `json:"reasons"`
	PolicyRevision string             `json:"policy_revision"`
	RequestID      string             `json:"request_id"`
	Model          string             `json:"model"`
	InputTokens    int                `json:"input_tokens"`
	OutputTokens   int                `json:"output_tokens"`
	Message        string             `json:"message"`
	OccurredAt     string             `json:"occurred_at"`
	Redactions     []warden.Redaction `json:"redactions"`
	PrevHash       string             `json:"prev_hash"`
}

// EventHash returns the hex SHA-256 of e's canonical encoding (with
// e.PrevHash; e.Hash and e.Seq are not part of it). docs/audit.md has the
// definition and a script that recomputes it.
func EventHash(e warden.AuditEvent) (string, error) {
	b, err := CanonicalEvent(e)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// CanonicalEvent returns the bytes EventHash hashes, in e's HashVersion
// (0 and 1: version 1; 2: also seq and recorded_at).
func CanonicalEvent(e warden.AuditEvent) ([]byte, error) {
	h := hashedEvent{
		V: 1, EventID: e.ID, EventType: string(e.Type), Tenant: e.Tenant, WorkflowID: e.WorkflowID,
		RunID: e.RunID, Step: e.Step, CallID: e.CallID, Actor: e.Actor, Tool: e.Tool,
		Args: e.Args, Result: e.Result, Decision: e.Decision, Risk: string(e.Risk), Reasons: e.Reasons,
		PolicyRevision: e.PolicyRevision, RequestID: e.RequestID, Model: e.Model,
		InputTokens: e.InputTokens, OutputTokens: e.OutputTokens, Message: e.Message,
		OccurredAt: e.OccurredAt.UTC().Format(canonicalTime), Redactions: e.Redactions, PrevHash: e.PrevHash,
	}
	if len(h.Args) == 0 {
		h.Args = json.RawMessage("null")
	}
	if len(h.Result) == 0 {
		h.Result = json.RawMessage("null")
	}
	if h.Reasons == nil {
		h.Reasons = []string{}
	}
	if h.Redactions == nil {
		h.Redactions = []warden.Redaction{}
	}
	var v any = h
	switch e.HashVersion {
	case 0, 1:
	case 2:
		if e.Seq <= 0 || e.RecordedAt.IsZero() {
			return nil, fmt.Errorf("encode event %s: hash version 2 needs the seq and recorded_at the store assigns", e.ID)
		}
		h.V = 2
		v = hashedEventV2{hashedEvent: h, Seq: e.Seq, RecordedAt: e.RecordedAt.UTC().Format(canonicalTime)}
	default:
		return nil, fmt.Errorf("encode event %s: unknown hash version %d (a newer Warden wrote it, or the row was changed)", e.ID, e.HashVersion)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return CanonicalJSON(raw)
}
