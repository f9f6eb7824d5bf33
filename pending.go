package warden

import "time"

// MemoPending is the memo key under which a run keeps its pending approval
// requests ([]PendingApproval) current, so that approvers can read what to
// approve from the server (DescribeWorkflowExecution, ListWorkflowExecutions)
// when no worker answers the pending_approvals query. The key is absent
// when nothing is pending.
const MemoPending = "warden.pending"

// PendingApproval is a pending approval request as the run's memo holds
// it: what an approver needs to identify, decide and sign a request, and
// nothing more. It carries no arguments (only their hash) and no policy
// reasons, because either can hold secrets or personal data, and the memo
// is stored by the server and shown by the Web UI to anyone who may list
// workflows. The live query (ApprovalRequest) has both.
type PendingApproval struct {
	RequestID string `json:"request_id"`
	Step      int    `json:"step"`
	CallID    string `json:"call_id"`
	Tool      string `json:"tool"`
	ArgsHash  string `json:"args_hash"`
	Risk      Risk   `json:"risk"`
	// Approvers is the policy's approver set without public keys.
	Approvers      Approvers      `json:"approvers"`
	Quorum         int            `json:"quorum"`
	Approvals      []ApprovalVote `json:"approvals,omitempty"`
	Requester      string         `json:"requester"`
	RequestedAt    time.Time      `json:"requested_at"`
	ExpiresAt      time.Time      `json:"expires_at"`
	PolicyRevision string         `json:"policy_revision"`
	// NameForm is ApprovalRequest.NameForm.
	NameForm int `json:"name_form,omitempty"`
	// RunID and Nonce are ApprovalRequest's: what a signature covers.
	RunID string `json:"run_id,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// ApprovalVote is one decision received for a pending request, without
// the approver's reason, edited arguments or signature.
type ApprovalVote struct {
	Approver string `json:"approver"`
	Decision string `json:"decision"`
}

// Pending is the memo form of r.
func (r ApprovalRequest) Pending() PendingApproval {
	p := PendingApproval{
		RequestID: r.RequestID, Step: r.Step, CallID: r.CallID, Tool: r.Tool, ArgsHash: r.ArgsHash, Risk: r.Risk,
		Approvers: r.Approvers, Quorum: r.Quorum, Requester: r.Requester,
		RequestedAt: r.RequestedAt, ExpiresAt: r.ExpiresAt, PolicyRevision: r.PolicyRevision, NameForm: r.NameForm,
		RunID: r.RunID, Nonce: r.Nonce,
	}
	p.Approvers.Keys = nil
	for _, d := range r.Approvals {
		p.Approvals = append(p.Approvals, ApprovalVote{Approver: d.Approver, Decision: d.Decision})
	}
	return p
}

// Request is p as an ApprovalRequest, with no Args and no Reasons (the
// memo has neither) and no approver keys.
func (p PendingApproval) Request() ApprovalRequest {
	r := ApprovalRequest{
		RequestID: p.RequestID, Step: p.Step, CallID: p.CallID, Tool: p.Tool, ArgsHash: p.ArgsHash, Risk: p.Risk,
		Approvers: p.Approvers, Quorum: p.Quorum, Requester: p.Requester,
		RequestedAt: p.RequestedAt, ExpiresAt: p.ExpiresAt, PolicyRevision: p.PolicyRevision, NameForm: p.NameForm,
		RunID: p.RunID, Nonce: p.Nonce,
	}
	for _, v := range p.Approvals {
		r.Approvals = append(r.Approvals, ApprovalDecision{RequestID: p.RequestID, Approver: v.Approver, Decision: v.Decision})
	}
	return r
}

// ApprovalStatusSignalled is the receipt status of a decision sent as the
// approve Signal: delivered to the run, applied (or refused and audited)
// when a worker runs its next workflow task.
const ApprovalStatusSignalled = "signalled"

// ApprovalStatusUnconfirmed is the receipt status when the approve Update
// timed out and the request was no longer pending afterwards: the Update
// was most likely applied late by a busy worker (or another decision or
// the expiry closed the request). warden status and the audit tell which.
const ApprovalStatusUnconfirmed = "unconfirmed"
