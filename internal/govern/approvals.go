package govern

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// The approval rules: whether an approver may decide a pending request,
// and with what. Issue 13's authenticated approvers extend them here.

// CheckDecision reports why d cannot be applied to the pending request r
// at time now, or nil if it can. The workflow's Update validator and its
// Signal handler both use it, and the client before it sends d.
func CheckDecision(r warden.ApprovalRequest, d warden.ApprovalDecision, now time.Time) error {
	if d.RequestID != r.RequestID {
		return fmt.Errorf("%w: request_id %q does not match pending request %q", warden.ErrApprovalInvalid, d.RequestID, r.RequestID)
	}
	switch d.Decision {
	case warden.ApprovalApprove, warden.ApprovalReject:
	default:
		return fmt.Errorf("%w: decision must be %q or %q, got %q", warden.ErrApprovalInvalid, warden.ApprovalApprove, warden.ApprovalReject, d.Decision)
	}
	form := NameForm(r.NameForm)
	approver := strings.TrimSpace(d.Approver)
	if approver == "" {
		return fmt.Errorf("%w: approver is required", warden.ErrApprovalInvalid)
	}
	if form == NamesAsIdentities {
		if _, err := ParseName(approver); err != nil {
			return fmt.Errorf("%w: approver: %v", warden.ErrApprovalInvalid, err)
		}
	}
	if form.Same(approver, r.Requester) && !r.Approvers.AllowSelfApproval {
		return fmt.Errorf("%w: %s requested this run and may not approve its calls", warden.ErrApprovalInvalid, approver)
	}
	listed, ok := form.Resolve(r.Approvers, approver, r.Requester)
	if !ok {
		return fmt.Errorf("%w: %s is not among the approvers the policy permits (%s)", warden.ErrApprovalInvalid, approver, describe(r.Approvers))
	}
	if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
		return fmt.Errorf("%w: request %s expired at %s", warden.ErrApprovalInvalid, r.RequestID, r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if slices.ContainsFunc(r.Approvals, func(a warden.ApprovalDecision) bool { return form.Same(a.Approver, approver) }) {
		return fmt.Errorf("%w: %s has already decided on request %s", warden.ErrApprovalInvalid, approver, r.RequestID)
	}
	if len(d.Args) > 0 {
		if d.Decision != warden.ApprovalApprove {
			return fmt.Errorf("%w: edited args come only with an approval", warden.ErrApprovalInvalid)
		}
		if len(r.Approvals) > 0 {
			return fmt.Errorf("%w: the args cannot be edited once another approver has approved them", warden.ErrApprovalInvalid)
		}
		var obj map[string]any
		if err := json.Unmarshal(d.Args, &obj); err != nil {
			return fmt.Errorf("%w: edited args must be a JSON object: %v", warden.ErrApprovalInvalid, err)
		}
	}
	return checkSignature(r, d, listed)
}

// checkSignature verifies d's signature against the key the policy lists
// for approver (the policy's spelling of the name).
func checkSignature(r warden.ApprovalRequest, d warden.ApprovalDecision, approver string) error {
	if !r.Approvers.RequireSignature {
		return nil
	}
	pub, ok := r.Approvers.Keys[approver]
	if !ok {
		return fmt.Errorf("%w: this call needs a signed approval and the policy has no public key for %s", warden.ErrApprovalInvalid, approver)
	}
	if d.Signature == "" {
		return fmt.Errorf("%w: this call needs a signed approval: sign with `warden approve --key FILE` (Ed25519 over the request's SigningMessage)", warden.ErrApprovalInvalid)
	}
	key, err := base64.StdEncoding.DecodeString(pub)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: the policy's public key for %s is not a base64 Ed25519 key", warden.ErrApprovalInvalid, approver)
	}
	sig, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", warden.ErrApprovalInvalid)
	}
	msg, err := r.SigningMessage(d)
	if err != nil {
		return err
	}
	if !ed25519.Verify(ed25519.PublicKey(key), msg, sig) {
		what := "request, arguments and decision"
		if r.Nonce != "" {
			what = "run, request (nonce " + r.Nonce + "), arguments and decision"
		}
		return fmt.Errorf("%w: the signature does not verify with %s's key for this %s", warden.ErrApprovalInvalid, approver, what)
	}
	return nil
}

// describe names who may approve, for refusals.
func describe(a warden.Approvers) string {
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
