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
	Since      time.Time
	// Limit caps the rows returned; zero means the store's default.
	Limit int
}
