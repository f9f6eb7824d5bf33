package govern_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
)

func TestCheckDecision(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	req := warden.ApprovalRequest{
		RequestID: "apr_1", Requester: "dana", ExpiresAt: now.Add(time.Hour),
		Approvers: warden.Approvers{Users: []string{"alice", "bob", "dana"}},
		Approvals: []warden.ApprovalDecision{{RequestID: "apr_1", Decision: "approve", Approver: "bob"}},
	}
	ok := warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "alice"}
	require.NoError(t, govern.CheckDecision(req, ok, now))
	cases := map[string]struct {
		d    warden.ApprovalDecision
		now  time.Time
		want string
	}{
		"other request": {warden.ApprovalDecision{RequestID: "apr_2", Decision: "approve", Approver: "alice"}, now, "does not match"},
		"bad verb":      {warden.ApprovalDecision{RequestID: "apr_1", Decision: "yes", Approver: "alice"}, now, "decision must be"},
		"no approver":   {warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: " "}, now, "approver is required"},
		"self":          {warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "dana"}, now, "may not approve"},
		"not permitted": {warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "eve"}, now, "not among the approvers"},
		"expired":       {ok, now.Add(time.Hour), "expired"},
		"twice":         {warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "bob"}, now, "already decided"},
	}
	for name, c := range cases {
		err := govern.CheckDecision(req, c.d, c.now)
		require.ErrorIs(t, err, warden.ErrApprovalInvalid, name)
		require.ErrorContains(t, err, c.want, name)
	}
	self := req
	self.Approvers.AllowSelfApproval = true
	require.NoError(t, govern.CheckDecision(self, warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "dana"}, now))
	anyone := req
	anyone.Approvers.Users = []string{"*"}
	require.NoError(t, govern.CheckDecision(anyone, warden.ApprovalDecision{RequestID: "apr_1", Decision: "reject", Approver: "eve"}, now))
	require.Error(t, govern.CheckDecision(anyone, warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "dana"}, now), "* never includes the requester")
}

// TestSignaturesAreBoundToTheRun is attack class 2 (signed approvals
// replayed): a request opened under workflow version run-bound-approvals
// carries its run ID and nonce, and a signature made for any other run,
// nonce, request, arguments or decision — or in the older form that
// covers neither run nor nonce — is refused with a reason. Before the
// binding, the "other run", "other nonce" and "old form" signatures verified.
func TestSignaturesAreBoundToTheRun(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	r := warden.ApprovalRequest{RequestID: "apr_1", Requester: "dana", ArgsHash: "h0", ArgsForm: warden.ArgsFormCanonical,
		NameForm: int(govern.NamesAsIdentities), RunID: "run-2", Nonce: "n2",
		Approvers: warden.Approvers{Users: []string{"alice"}, RequireSignature: true, Keys: map[string]string{"alice": base64.StdEncoding.EncodeToString(pub)}}}
	now := time.Unix(0, 0)
	d := warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "alice"}
	signedOver := func(msg []byte) warden.ApprovalDecision {
		out := d
		out.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
		return out
	}
	good, err := warden.SignApproval(priv, r, d)
	require.NoError(t, err)
	require.NoError(t, govern.CheckDecision(r, good, now))
	require.Equal(t, warden.RunApprovalSigningMessage("run-2", "n2", "apr_1", "h0", "approve"), mustMessage(t, r, d))

	replays := map[string]warden.ApprovalDecision{
		"another run":             signedOver(warden.RunApprovalSigningMessage("run-1", "n2", "apr_1", "h0", "approve")),
		"another nonce (a reset)": signedOver(warden.RunApprovalSigningMessage("run-2", "n1", "apr_1", "h0", "approve")),
		"the old form, no run":    signedOver(warden.ApprovalSigningMessage("apr_1", "h0", "approve")),
		"another request":         signedOver(warden.RunApprovalSigningMessage("run-2", "n2", "apr_0", "h0", "approve")),
		"other arguments":         signedOver(warden.RunApprovalSigningMessage("run-2", "n2", "apr_1", "h1", "approve")),
		"another decision":        signedOver(warden.RunApprovalSigningMessage("run-2", "n2", "apr_1", "h0", "reject")),
		"fields run together":     signedOver([]byte("warden-approval-v2\nrun-2n2\n\napr_1\nh0\napprove\n")),
		"a reject signature reused": func() warden.ApprovalDecision {
			x, _ := warden.SignApproval(priv, r, warden.ApprovalDecision{RequestID: "apr_1", Decision: "reject", Approver: "alice"})
			x.Decision = "approve"
			return x
		}(),
		"another key": func() warden.ApprovalDecision {
			_, k, _ := ed25519.GenerateKey(nil)
			x, _ := warden.SignApproval(k, r, d)
			return x
		}(),
		"signature of another request": func() warden.ApprovalDecision {
			o := r
			o.RunID = "run-3"
			x, _ := warden.SignApproval(priv, o, d)
			return x
		}(),
	}
	for name, forged := range replays {
		err := govern.CheckDecision(r, forged, now)
		require.ErrorIs(t, err, warden.ErrApprovalInvalid, name)
		require.ErrorContains(t, err, "does not verify", name)
		require.ErrorContains(t, err, "nonce n2", name)
	}
}

func mustMessage(t *testing.T, r warden.ApprovalRequest, d warden.ApprovalDecision) []byte {
	t.Helper()
	msg, err := r.SigningMessage(d)
	require.NoError(t, err)
	return msg
}
