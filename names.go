package warden

// Wire names. Renaming any of these is a breaking change for running
// workflows, product backends and approvers' saved links.
const (
	// WorkflowAgentRun is the workflow type name of a governed agent run.
	WorkflowAgentRun = "AgentRun"
	// DefaultTaskQueue is the task queue workers poll when none is configured.
	DefaultTaskQueue = "warden"

	// UpdateApprove is the Update approvers send (payload: ApprovalDecision).
	UpdateApprove = "approve"
	// SignalApprove is the Signal equivalent of UpdateApprove, for
	// deployments where Updates are disabled. Same payload.
	SignalApprove = "approve"
	// QueryStatus returns a RunState.
	QueryStatus = "status"
	// QueryPendingApprovals returns []ApprovalRequest.
	QueryPendingApprovals = "pending_approvals"
)
