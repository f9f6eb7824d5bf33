package warden

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Approval audit events beyond the core ones in audit_event.go.
const (
	// EventApprovalEscalated records that a pending approval was escalated.
	EventApprovalEscalated EventType = "approval_escalated"
	// EventApprovalIdentities records, when a run ends, the transport
	// identity the Temporal history holds for each approval (the Web UI's
	// logged-in user with OIDC, the client's identity otherwise).
	EventApprovalIdentities EventType = "approval_identities"
)

// ApprovalIdentity ties an approval decision to how it arrived.
type ApprovalIdentity struct {
	RequestID string `json:"request_id"`
	Approver  string `json:"approver"`
	Decision  string `json:"decision"`
	// Via is "update" or "signal".
	Via      string `json:"via"`
	UpdateID string `json:"update_id,omitempty"`
	// TransportIdentity is the identity the history event carries; empty
	// when the sender gave none, "unknown" when it could not be read.
	TransportIdentity string `json:"transport_identity"`
}

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
	// Args, when set on an approval, are edited arguments: the call runs
	// with these instead of the model's, after the policy decides on them again.
	Args json.RawMessage `json:"args,omitempty"`
	// Signature is the base64 Ed25519 signature of ApprovalSigningMessage,
	// required when the policy demands signed approvals.
	Signature string `json:"signature,omitempty"`
}

// ApprovalSigningMessage is the exact byte string an approver signs: the
// request ID, the hash of the arguments being approved (the edited ones
// when the approval edits them) and the decision.
func ApprovalSigningMessage(requestID, argsHash, decision string) []byte {
	return []byte("warden-approval-v1\n" + requestID + "\n" + argsHash + "\n" + decision + "\n")
}

// SignApproval signs d for request r with key, filling d.Signature.
func SignApproval(key ed25519.PrivateKey, r ApprovalRequest, d ApprovalDecision) (ApprovalDecision, error) {
	hash, err := r.approvedHash(d)
	if err != nil {
		return d, err
	}
	d.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, ApprovalSigningMessage(d.RequestID, hash, d.Decision)))
	return d, nil
}

// approvedHash is the hash of the arguments d approves: its edited
// arguments, or the request's.
func (r ApprovalRequest) approvedHash(d ApprovalDecision) (string, error) {
	if len(d.Args) == 0 {
		return r.ArgsHash, nil
	}
	h, err := ArgsHashForm(d.Args, r.ArgsForm)
	if err != nil {
		return "", fmt.Errorf("%w: edited args are not valid JSON: %v", ErrApprovalInvalid, err)
	}
	return h, nil
}

// checkSignature verifies d's signature against the approver's key.
func (r ApprovalRequest) checkSignature(d ApprovalDecision, approver string) error {
	if !r.Approvers.RequireSignature {
		return nil
	}
	pub, ok := r.Approvers.Keys[approver]
	if !ok {
		return fmt.Errorf("%w: this call needs a signed approval and the policy has no public key for %s", ErrApprovalInvalid, approver)
	}
	if d.Signature == "" {
		return fmt.Errorf("%w: this call needs a signed approval: sign with `warden approve --key FILE` (Ed25519 over ApprovalSigningMessage)", ErrApprovalInvalid)
	}
	key, err := base64.StdEncoding.DecodeString(pub)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: the policy's public key for %s is not a base64 Ed25519 key", ErrApprovalInvalid, approver)
	}
	sig, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrApprovalInvalid)
	}
	hash, err := r.approvedHash(d)
	if err != nil {
		return err
	}
	if !ed25519.Verify(ed25519.PublicKey(key), ApprovalSigningMessage(d.RequestID, hash, d.Decision), sig) {
		return fmt.Errorf("%w: the signature does not verify with %s's key for this request, arguments and decision", ErrApprovalInvalid, approver)
	}
	return nil
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
	// ArgsForm is how ArgsHash (and an edit's hash) encodes arguments:
	// ArgsFormCanonical, or ArgsFormLegacy (0) in runs started before it.
	ArgsForm int `json:"args_form,omitempty"`
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

// RunApprovalRequestID is ApprovalRequestID bound to the run too (chain is
// the run's first Temporal run ID): an approval of one run, readable in its
// history, cannot approve the same call in a later run under the same
// workflow ID. Runs that hash arguments in ArgsFormCanonical use it.
func RunApprovalRequestID(chain, workflowID string, step int, callID, tool, argsHash, policyRevision string) string {
	return ApprovalRequestID(chain+"\x00"+workflowID, step, callID, tool, argsHash, policyRevision)
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
	if len(d.Args) > 0 {
		if d.Decision != ApprovalApprove {
			return fmt.Errorf("%w: edited args come only with an approval", ErrApprovalInvalid)
		}
		if len(r.Approvals) > 0 {
			return fmt.Errorf("%w: the args cannot be edited once another approver has approved them", ErrApprovalInvalid)
		}
		var obj map[string]any
		if err := json.Unmarshal(d.Args, &obj); err != nil {
			return fmt.Errorf("%w: edited args must be a JSON object: %v", ErrApprovalInvalid, err)
		}
	}
	return r.checkSignature(d, approver)
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
