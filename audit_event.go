package warden

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// EventType names an audit event.
type EventType string

// Audit event types, in the order a run usually produces them.
const (
	EventRunStarted        EventType = "run_started"
	EventModelCalled       EventType = "model_called"
	EventToolRequested     EventType = "tool_requested"
	EventPolicyDecided     EventType = "policy_decided"
	EventApprovalRequested EventType = "approval_requested"
	EventApprovalDecided   EventType = "approval_decided"
	// EventApprovalRefused records an approval Signal the workflow refused
	// (Update refusals are rejected by the validator before they reach history).
	EventApprovalRefused EventType = "approval_refused"
	// EventToolStarted is written just before a non-idempotent tool runs, so
	// a crash mid-run leaves evidence that the outcome is unknown.
	EventToolStarted        EventType = "tool_started"
	EventToolExecuted       EventType = "tool_executed"
	EventToolFailed         EventType = "tool_failed"
	EventToolOutcomeUnknown EventType = "tool_outcome_unknown"
	EventRunFinished        EventType = "run_finished"
	// EventEgressConnection records a network connection a tool opened (or
	// was refused) through the worker's egress proxy.
	EventEgressConnection EventType = "egress_connection"
)

// AuditEvent is one row of the append-only action log.
type AuditEvent struct {
	// ID is deterministic (see EventID): a retried write of the same event
	// is a no-op.
	ID string `json:"event_id"`
	// Seq is the store's insertion order, assigned on append.
	Seq        int64     `json:"seq"`
	Type       EventType `json:"event_type"`
	Tenant     string    `json:"tenant"`
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Step       int       `json:"step"`
	CallID     string    `json:"call_id,omitempty"`
	// Actor is who caused the event: the requester, the model, an approver,
	// "policy" or "system".
	Actor          string          `json:"actor"`
	Tool           string          `json:"tool,omitempty"`
	Args           json.RawMessage `json:"args,omitempty"`
	Result         json.RawMessage `json:"result,omitempty"`
	Decision       string          `json:"decision,omitempty"`
	Risk           Risk            `json:"risk,omitempty"`
	Reasons        []string        `json:"reasons,omitempty"`
	PolicyRevision string          `json:"policy_revision,omitempty"`
	RequestID      string          `json:"request_id,omitempty"`
	Model          string          `json:"model,omitempty"`
	InputTokens    int             `json:"input_tokens,omitempty"`
	OutputTokens   int             `json:"output_tokens,omitempty"`
	Message        string          `json:"message,omitempty"`
	OccurredAt     time.Time       `json:"occurred_at"`
	// Redactions lists the redaction rules that fired on this event's args,
	// result or message before it was stored (never the redacted values).
	Redactions []Redaction `json:"redactions,omitempty"`
	// PrevHash is the Hash of the previous event of the same tenant and
	// workflow ("" for the first). The store sets it on append.
	PrevHash string `json:"prev_hash,omitempty"`
	// Hash is the hex SHA-256 of the event's canonical encoding, which
	// includes PrevHash (see docs/audit.md). The store sets it on append.
	Hash string `json:"hash,omitempty"`
	// RecordedAt is when the store wrote the event. The store sets it on
	// append; from hash version 2 it is part of the hash.
	RecordedAt time.Time `json:"recorded_at,omitzero"`
	// HashVersion is the canonical encoding Hash was computed with: 2 (the
	// store's since migration postgres 0009 / sqlite 0007) adds Seq and
	// RecordedAt to version 1; 0 means 1 (exports written before).
	HashVersion int `json:"hash_version,omitempty"`
}

// Redaction records that a rule replaced matches in one field of an event.
type Redaction struct {
	// Field is "args", "result", "message", "reasons", "actor" or
	// "request_id".
	Field string `json:"field"`
	// Rule names the rule that fired (for example "email" or "aws_access_key").
	Rule string `json:"rule"`
	// Count is how many matches the rule replaced in the field.
	Count int `json:"count"`
}

// EventID derives an event's ID from what makes it unique: the run, the
// step, the call, the type and a discriminator (for example the approver),
// so retries and replays produce the same ID.
func EventID(workflowID, runID string, step int, callID string, typ EventType, discriminator string) string {
	h := sha256.New()
	for _, part := range []string{workflowID, runID, strconv.Itoa(step), callID, string(typ), discriminator} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil))[:32]
}

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	Tenant     string
	WorkflowID string
	Tool       string
	Decision   string
	Type       EventType
	// Actor matches the event's actor exactly (a requester, an approver,
	// "model", "policy", "sandbox" or "system").
	Actor string
	// Approver selects approval_decided events decided by this approver.
	Approver string
	// Risk matches the decision's risk level.
	Risk Risk
	// Since and Until bound OccurredAt: Since inclusive, Until exclusive.
	Since time.Time
	Until time.Time
	// Text matches events whose args, result or message contain it
	// (case-insensitive substring).
	Text string
	// AfterSeq returns only events with a larger Seq: the pagination cursor
	// (pass the last Seq of the previous page).
	AfterSeq int64
	// Limit caps the rows returned; zero means the store's default.
	Limit int
}
