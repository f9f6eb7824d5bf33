package warden

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"encoding/json"
)

// Approval verdicts an approver sends.
const (
	ApprovalApprove = "approve"
	ApprovalReject  = "reject"
)

// ApprovalDecision is the payload of the approve Update and Signal.
type ApprovalDecision struct {
	RequestID string `json:"request_id"`
	// Decision is "approve" or "reject".
	Decision string `json:"decision"`
	// Approver names who decides; checked against the policy's approver set.
	Approver string `json:"approver"`
	Reason   string `json:"reason,omitempty"`
}

// ApprovalRequest is a call waiting for approval, as the pending_approvals
// query shows it.
type ApprovalRequest struct {
	RequestID      string          `json:"request_id"`
	Step           int             `json:"step"`
	CallID         string          `json:"call_id"`
	Tool           string          `json:"tool"`
	Args           json.RawMessage `json:"args"`
	ArgsHash       string          `json:"args_hash"`
	Risk           Risk            `json:"risk"`
	Reasons        []string        `json:"reasons,omitempty"`
	Approvers      Approvers       `json:"approvers"`
	Quorum         int             `json:"quorum"`
	Requester      string          `json:"requester"`
	PolicyRevision string          `json:"policy_revision"`
	RequestedAt    time.Time       `json:"requested_at"`
	ExpiresAt      time.Time       `json:"expires_at"`
	// Approvals holds the approvals received so far (for a quorum).
	Approvals []ApprovalDecision `json:"approvals,omitempty"`
}

// ApprovalReceipt is what the approve Update returns.
type ApprovalReceipt struct {
	RequestID string `json:"request_id"`
	// Status is "approved", "rejected" or "pending" (a quorum still needs more approvers).
	Status    string `json:"status"`
	Approvals int    `json:"approvals"`
	Quorum    int    `json:"quorum"`
}

// Approval request outcomes (ApprovalReceipt.Status and audit messages).
const (
	ApprovalStatusPending  = "pending"
	ApprovalStatusApproved = "approved"
	ApprovalStatusRejected = "rejected"
	ApprovalStatusExpired  = "expired"
)

// ApprovalEvidence is what the Execute activity checks before running an
// approved call.
type ApprovalEvidence struct {
	RequestID string `json:"request_id"`
	ArgsHash  string `json:"args_hash"`
	// Approvers are the distinct names that approved.
	Approvers []string `json:"approvers"`
}

// ApprovalRequestID derives the ID of an approval request from the exact
// action it approves, so an approval cannot be applied to another call.
func ApprovalRequestID(workflowID string, step int, callID, tool, argsHash, policyRevision string) string {
	h := sha256.New()
	for _, part := range []string{workflowID, strconv.Itoa(step), callID, tool, argsHash, policyRevision} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "apr_" + hex.EncodeToString(h.Sum(nil))[:24]
}

// Check reports why d cannot be applied to r at time now, or nil if it can.
// The workflow's Update validator and its Signal handler both use it.
func (r ApprovalRequest) Check(d ApprovalDecision, now time.Time) error {
	if d.RequestID != r.RequestID {
		return fmt.Errorf("%w: request_id %q does not match pending request %q", ErrApprovalInvalid, d.RequestID, r.RequestID)
	}
	switch d.Decision {
	case ApprovalApprove, ApprovalReject:
	default:
		return fmt.Errorf("%w: decision must be %q or %q, got %q", ErrApprovalInvalid, ApprovalApprove, ApprovalReject, d.Decision)
	}
	approver := strings.TrimSpace(d.Approver)
	if approver == "" {
		return fmt.Errorf("%w: approver is required", ErrApprovalInvalid)
	}
	if approver == r.Requester && !r.Approvers.AllowSelfApproval {
		return fmt.Errorf("%w: %s requested this run and may not approve its calls", ErrApprovalInvalid, approver)
	}
	if !r.Approvers.Permits(approver, r.Requester) {
		return fmt.Errorf("%w: %s is not among the approvers the policy permits (%s)", ErrApprovalInvalid, approver, r.Approvers.describe())
	}
	if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
		return fmt.Errorf("%w: request %s expired at %s", ErrApprovalInvalid, r.RequestID, r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if slices.ContainsFunc(r.Approvals, func(a ApprovalDecision) bool { return a.Approver == approver }) {
		return fmt.Errorf("%w: %s has already decided on request %s", ErrApprovalInvalid, approver, r.RequestID)
	}
	return nil
}

func (a Approvers) describe() string {
	var parts []string
	if len(a.Users) > 0 {
		parts = append(parts, "users: "+strings.Join(a.Users, ", "))
	}
	if len(a.Groups) > 0 {
		parts = append(parts, "groups: "+strings.Join(a.Groups, ", "))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
