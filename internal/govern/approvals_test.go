package govern_test

import (
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
