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
	// QueryTranscript returns []Message: the conversation, arguments redacted where the policy says.
	QueryTranscript = "transcript"
)

// Search attributes (Keyword) the workflow keeps current, so approvers can
// filter the Temporal Web UI's workflow list (the approver inbox).
const (
	SearchAttrStatus      = "WardenStatus"
	SearchAttrTenant      = "WardenTenant"
	SearchAttrRequester   = "WardenRequester"
	SearchAttrRisk        = "WardenRisk"
	SearchAttrPendingTool = "WardenPendingTool"
)

// SearchAttributes lists every search attribute name Warden uses; all are Keyword.
var SearchAttributes = []string{SearchAttrStatus, SearchAttrTenant, SearchAttrRequester, SearchAttrRisk, SearchAttrPendingTool}

// SearchStatus is the WardenStatus value for a run status (the values the
// approver inbox filters on, for example "AwaitingApproval").
func SearchStatus(s RunStatus) string {
	switch s {
	case StatusRunning:
		return "Running"
	case StatusAwaitingApproval:
		return "AwaitingApproval"
	case StatusCompleted:
		return "Completed"
	case StatusBudgetExhausted:
		return "BudgetExhausted"
	case StatusFailed:
		return "Failed"
	case StatusCancelled:
		return "Cancelled"
	}
	return string(s)
}
