package warden

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
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
	// Signature is the base64 Ed25519 signature of the request's
	// SigningMessage, required when the policy demands signed approvals.
	Signature string `json:"signature,omitempty"`
}

// ApprovalSigningMessage is the exact byte string an approver signs for a
// request opened before requests were bound to their run (no Nonce): the
// request ID, the hash of the arguments being approved (the edited ones
// when the approval edits them) and the decision.
func ApprovalSigningMessage(requestID, argsHash, decision string) []byte {
	return []byte("warden-approval-v1\n" + requestID + "\n" + argsHash + "\n" + decision + "\n")
}

// RunApprovalSigningMessage is the exact byte string an approver signs for
// a request bound to its run: ApprovalSigningMessage's fields after the
// Temporal run ID the request was opened in and the request's nonce, so a
// signature read from one run's history approves nothing in another run,
// nor in a reset of the same run, even where the request ID is the same.
func RunApprovalSigningMessage(runID, nonce, requestID, argsHash, decision string) []byte {
	return []byte("warden-approval-v2\n" + runID + "\n" + nonce + "\n" + requestID + "\n" + argsHash + "\n" + decision + "\n")
}

// SigningMessage is what d's signature must cover for request r: the run
// bound message when r carries a nonce, the older one otherwise.
func (r ApprovalRequest) SigningMessage(d ApprovalDecision) ([]byte, error) {
	hash, err := r.ApprovedHash(d)
	if err != nil {
		return nil, err
	}
	if r.Nonce == "" {
		return ApprovalSigningMessage(d.RequestID, hash, d.Decision), nil
	}
	return RunApprovalSigningMessage(r.RunID, r.Nonce, d.RequestID, hash, d.Decision), nil
}

// SignApproval signs d for request r with key, filling d.Signature.
func SignApproval(key ed25519.PrivateKey, r ApprovalRequest, d ApprovalDecision) (ApprovalDecision, error) {
	msg, err := r.SigningMessage(d)
	if err != nil {
		return d, err
	}
	d.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))
	return d, nil
}

// ApprovedHash is the hash of the arguments d approves: its edited
// arguments, or the request's; what an approval's signature covers.
func (r ApprovalRequest) ApprovedHash(d ApprovalDecision) (string, error) {
	if len(d.Args) == 0 {
		return r.ArgsHash, nil
	}
	h, err := ArgsHashForm(d.Args, r.ArgsForm)
	if err != nil {
		return "", fmt.Errorf("%w: edited args are not valid JSON: %v", ErrApprovalInvalid, err)
	}
	return h, nil
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
	// NameForm is how approver and requester names are compared: 1 as
	// identities (NFKC, case-folded, look-alike letters equal, invisible
	// characters refused), 0 as typed in runs started before it.
	NameForm int `json:"name_form,omitempty"`
	// RunID is the Temporal run the request was opened in and Nonce a
	// random value drawn for the request when it opened; signatures cover
	// both (RunApprovalSigningMessage). Both are empty in requests opened
	// before workflow version run-bound-approvals.
	RunID string `json:"run_id,omitempty"`
	Nonce string `json:"nonce,omitempty"`
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
