package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/canon"
)

// HashVersion is the version of the seal encoding (field "v" of the hashed
// seal) and the first event encoding; EventHashVersion is the events' now.
// docs/audit.md specifies both.
const HashVersion = 1

// CanonicalJSON re-encodes the JSON value raw in Warden's canonical form
// (internal/canon, specified in docs/audit.md).
func CanonicalJSON(raw []byte) ([]byte, error) { return canon.JSON(raw) }

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

// canonicalSHA256 returns the hex SHA-256 of the canonical form of the
// JSON raw (what seals and retention digests hash).
func canonicalSHA256(raw []byte) (string, error) {
	c, err := CanonicalJSON(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
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
