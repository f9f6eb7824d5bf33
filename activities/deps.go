package activities

import (
	"context"
	"encoding/json"

	"github.com/wardenhq/warden"
)

// Model completes a conversation. *llm.Client implements it.
type Model interface {
	Complete(ctx context.Context, req warden.ModelRequest) (warden.ModelResponse, error)
}

// Payloads stores content by reference (claim check), so big content does
// not travel through Temporal history. audit.Store implements it.
type Payloads interface {
	PutPayload(ctx context.Context, data []byte) (string, error)
	Payload(ctx context.Context, ref string) ([]byte, error)
}

// Prices knows what models cost per 1,000 tokens. *llm.Router implements it.
type Prices interface {
	Price(model string) (inPer1K, outPer1K float64, ok bool)
}

// ModelPolicy decides whether a tenant may use a model. *policies.Engine
// implements it; on error the model is not used.
type ModelPolicy interface {
	AllowModel(ctx context.Context, tenant, model string) (bool, string, error)
}

// Policy decides whether a tool call may run. *policies.Engine implements it.
// On error it returns a deny decision too; callers fail closed either way.
type Policy interface {
	Decide(ctx context.Context, in warden.PolicyInput) (warden.Decision, error)
}

// Audit is the append-only action log. audit.Store implements it.
type Audit interface {
	// Append writes events idempotently (existing event IDs are skipped).
	Append(ctx context.Context, events ...warden.AuditEvent) error
	// Has reports whether an event ID exists.
	Has(ctx context.Context, eventID string) (bool, error)
}

// Escalations tells people that an approval request is still pending.
// The worker's webhook poster implements it.
type Escalations interface {
	Escalate(ctx context.Context, tenant, workflowID string, req warden.ApprovalRequest) error
}

// History reads how approvals arrived from the workflow's Temporal
// history. The worker's reader over the Temporal client implements it.
type History interface {
	// TransportIdentities returns the identity of each approve Update by
	// update ID, and of each approve Signal in arrival order.
	TransportIdentities(ctx context.Context, workflowID, runID string) (updates map[string]string, signals []SignalIdentity, err error)
}

// SignalIdentity is one approve Signal as the history holds it.
type SignalIdentity struct {
	RequestID string
	Approver  string
	Identity  string
}

// Tools knows the registered tools and runs them in the sandbox. The
// worker's adapter over *tools.Registry and *sandbox.Runner implements it.
type Tools interface {
	Spec(name string) (warden.ToolSpec, bool)
	Specs(allowed []string) []warden.ToolSpec
	// Validate checks args against the tool's JSON Schema; the error text is
	// written for the model to act on.
	Validate(name string, args json.RawMessage) error
	Run(ctx context.Context, in ToolRun) (warden.ToolOutput, error)
}

// ToolRun is one sandboxed tool invocation.
type ToolRun struct {
	Tool           string
	Args           json.RawMessage
	Workspace      string
	IdempotencyKey string
	// Call names the call in egress logs (CallRef.String).
	Call        string
	Obligations warden.Obligations
	// CallID is the model's ID of the tool call; Decision (the verdict) and
	// Risk are the policy's, ApprovalRequestID the approval it ran under
	// (empty without one). Traces carry them.
	CallID            string
	Decision          string
	Risk              warden.Risk
	ApprovalRequestID string
}
