package warden

import "encoding/json"

// Risk grades a tool call.
type Risk string

// Risk levels, lowest first.
const (
	RiskLow      Risk = "low"
	RiskMedium   Risk = "medium"
	RiskHigh     Risk = "high"
	RiskCritical Risk = "critical"
)

// Valid reports whether r is one of the four risk levels.
func (r Risk) Valid() bool {
	switch r {
	case RiskLow, RiskMedium, RiskHigh, RiskCritical:
		return true
	}
	return false
}

// SandboxMode is the isolation tools run in, as policies see it. Policies
// should judge it by allow-list: a mode they do not know is weak.
type SandboxMode string

// The sandbox modes a worker runs in (sandbox.ModeIsolated, ModeProcess).
const (
	SandboxIsolated SandboxMode = "isolated"
	SandboxProcess  SandboxMode = "process"
)

// PolicyInput is the document a policy decides on (Rego `input`).
type PolicyInput struct {
	Tenant     string `json:"tenant"`
	Requester  string `json:"requester"`
	WorkflowID string `json:"workflow_id"`
	Step       int    `json:"step"`
	// Tool is the registered tool's metadata; Known is false for a name no
	// tool is registered under.
	Tool PolicyTool `json:"tool"`
	// Args are the call's arguments (already validated against the tool's
	// schema when Tool.Known).
	Args json.RawMessage `json:"args"`
	// Approval is the evidence of approval, present only when the Execute
	// activity re-checks an approved call.
	Approval *ApprovalEvidence `json:"approval,omitempty"`
	// SandboxMode is the isolation the worker runs tools in, so policies can
	// refuse risky tools in weaker modes.
	SandboxMode SandboxMode `json:"sandbox_mode"`
	// Taint lists the sources of untrusted content the run has seen so far
	// (for example "tool:shell"): once tainted, exfiltration-capable tools
	// need approval under the default policy.
	Taint []string `json:"taint,omitempty"`
}

// PolicyTool is the part of a ToolSpec policies see.
type PolicyTool struct {
	Name       string   `json:"name"`
	Known      bool     `json:"known"`
	Risk       Risk     `json:"risk,omitempty"`
	Idempotent bool     `json:"idempotent"`
	Effects    []string `json:"effects,omitempty"`
}

// Decision is a policy's answer for one tool call.
type Decision struct {
	// Allow is false when the call must not run at all.
	Allow bool `json:"allow"`
	// RequireApproval means the call may run only with a valid approval.
	RequireApproval bool `json:"require_approval"`
	// Reasons explain the decision (deny reasons, or why approval is needed).
	Reasons []string `json:"reasons,omitempty"`
	Risk    Risk     `json:"risk"`
	// Approvers are who may approve (when RequireApproval).
	Approvers Approvers `json:"approvers"`
	// Quorum is how many distinct approvers must approve; at least 1.
	Quorum int `json:"quorum"`
	// Obligations constrain how the call runs.
	Obligations Obligations `json:"obligations"`
	// PolicyRevision identifies the policy that decided (bundle revision or content hash).
	PolicyRevision string `json:"policy_revision"`
}

// Verdict names the decision: "deny", "require_approval" or "allow".
func (d Decision) Verdict() string {
	switch {
	case !d.Allow:
		return VerdictDeny
	case d.RequireApproval:
		return VerdictRequireApproval
	default:
		return VerdictAllow
	}
}

// Verdicts, as stored in the audit log's decision column.
const (
	VerdictAllow           = "allow"
	VerdictDeny            = "deny"
	VerdictRequireApproval = "require_approval"
)

// Approvers says who may approve a call.
type Approvers struct {
	// Users are the approver names allowed, with group members already
	// expanded by the policy. "*" means anyone but the requester.
	Users []string `json:"users,omitempty"`
	// Groups are the group names the users came from, for display.
	Groups []string `json:"groups,omitempty"`
	// AllowSelfApproval lets the requester approve their own call.
	AllowSelfApproval bool `json:"allow_self_approval,omitempty"`
	// RequireSignature means every approval must carry an Ed25519 signature
	// (see ApprovalSigningMessage) by the approver's key in Keys.
	RequireSignature bool `json:"require_signature,omitempty"`
	// Keys maps approver names to base64 Ed25519 public keys (from policy data).
	Keys map[string]string `json:"keys,omitempty"`
}

// Obligations constrain a permitted call.
type Obligations struct {
	// TimeoutSeconds is the wall-clock limit of the tool run.
	TimeoutSeconds int `json:"timeout_seconds"`
	// MaxOutputBytes caps stdout and stderr each.
	MaxOutputBytes int `json:"max_output_bytes"`
	// ApprovalTimeoutSeconds is how long an approval request stays open;
	// zero means the run's ApprovalTimeout.
	ApprovalTimeoutSeconds int `json:"approval_timeout_seconds,omitempty"`
	// EscalateAfterSeconds is when a still-pending approval is escalated
	// (the worker posts it to its escalation webhook); zero means never.
	EscalateAfterSeconds int `json:"escalate_after_seconds,omitempty"`
	// StopOnReject ends the run when an approver rejects the call.
	StopOnReject bool `json:"stop_on_reject,omitempty"`
	// RedactArgs names top-level argument keys shown as "[redacted]" to
	// approvers and in the transcript.
	RedactArgs []string `json:"redact_args,omitempty"`
	// Hosts are the host:port pairs the call may reach, through the
	// worker's egress proxy only; empty means no network at all.
	Hosts []string `json:"hosts,omitempty"`
	// MemoryBytes caps the tool's address space (RLIMIT_AS) and, where
	// the sandbox has a cgroup, the memory of the whole run; zero means
	// the tool kind's default (and no cgroup memory limit).
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
	// Processes caps the processes of the tool's sandbox (its cgroup's
	// pids.max, or RLIMIT_NPROC in isolated mode without one); zero means
	// the sandbox default.
	Processes uint64 `json:"processes,omitempty"`
}
