package warden_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
)

func TestRunRequestValidateNamesEveryField(t *testing.T) {
	t.Parallel()
	err := warden.RunRequest{Budget: warden.Budget{MaxSteps: -1}, ApprovalTimeout: -time.Second}.Validate()
	require.ErrorIs(t, err, warden.ErrInvalidRequest)
	for _, want := range []string{"tenant is required", "requester is required", "goal is required", "budget.max_steps", "approval_timeout"} {
		require.ErrorContains(t, err, want)
	}
	ok := warden.RunRequest{Tenant: "t", Requester: "r", Goal: "g"}
	require.NoError(t, ok.Validate())
	d := ok.WithDefaults()
	require.Equal(t, warden.DefaultBudget, d.Budget)
	require.Equal(t, warden.DefaultApprovalTimeout, d.ApprovalTimeout)
}

func TestArgsHashIsCanonical(t *testing.T) {
	t.Parallel()
	a, err := warden.ArgsHash(json.RawMessage(`{"b": 1, "a": [1, 2.50, "x"]}`))
	require.NoError(t, err)
	b, err := warden.ArgsHash(json.RawMessage(`{"a":[1,2.50,"x"],"b":1}`))
	require.NoError(t, err)
	require.Equal(t, a, b, "key order and whitespace do not change the hash")
	c, err := warden.ArgsHash(json.RawMessage(`{"a":[1,2.5,"x"],"b":1}`))
	require.NoError(t, err)
	require.Equal(t, a, c, "numbers hash by value: 2.50 is 2.5")

	// One canonical form: the args hash an approval binds is the SHA-256 of
	// the bytes the audit chain hashes, so an auditor recomputes it from
	// the stored args. The legacy form (runs started before it) differs.
	args := json.RawMessage(`{"b":1.50,"a":"<x>","c":1e2}`)
	h, err := warden.ArgsHash(args)
	require.NoError(t, err)
	auditForm, err := audit.CanonicalJSON(args)
	require.NoError(t, err)
	require.Equal(t, `{"a":"<x>","b":1.5,"c":100}`, string(auditForm))
	sum := sha256.Sum256(auditForm)
	require.Equal(t, hex.EncodeToString(sum[:]), h)
	legacy, err := warden.ArgsHashForm(args, warden.ArgsFormLegacy)
	require.NoError(t, err)
	require.NotEqual(t, h, legacy, "the legacy form escapes < and keeps 1.50")
	_, err = warden.ArgsHashForm(args, 7)
	require.ErrorContains(t, err, "unknown argument form 7")
	_, err = warden.ArgsHash(json.RawMessage(`{"a":1} {"b":2}`))
	require.Error(t, err)
	_, err = warden.ArgsHash(json.RawMessage(`{oops`))
	require.Error(t, err)
}

func TestApprovalRequestIDBindsTheAction(t *testing.T) {
	t.Parallel()
	// A later run under the same workflow ID asks for other request IDs.
	require.NotEqual(t,
		warden.RunApprovalRequestID("run-1", "wf", 1, "c1", "issue_refund", "h1", "rev1"),
		warden.RunApprovalRequestID("run-2", "wf", 1, "c1", "issue_refund", "h1", "rev1"))
	base := warden.ApprovalRequestID("wf", 1, "c1", "issue_refund", "h1", "rev1")
	require.Regexp(t, `^apr_[0-9a-f]{24}$`, base)
	for _, other := range []string{
		warden.ApprovalRequestID("wf2", 1, "c1", "issue_refund", "h1", "rev1"),
		warden.ApprovalRequestID("wf", 2, "c1", "issue_refund", "h1", "rev1"),
		warden.ApprovalRequestID("wf", 1, "c2", "issue_refund", "h1", "rev1"),
		warden.ApprovalRequestID("wf", 1, "c1", "shell", "h1", "rev1"),
		warden.ApprovalRequestID("wf", 1, "c1", "issue_refund", "h2", "rev1"),
		warden.ApprovalRequestID("wf", 1, "c1", "issue_refund", "h1", "rev2"),
	} {
		require.NotEqual(t, base, other)
	}
}

func TestEventIDIsDeterministic(t *testing.T) {
	t.Parallel()
	a := warden.EventID("wf", "run", 1, "c", warden.EventToolExecuted, "")
	require.Equal(t, a, warden.EventID("wf", "run", 1, "c", warden.EventToolExecuted, ""))
	require.NotEqual(t, a, warden.EventID("wf", "run", 1, "c", warden.EventToolFailed, ""))
	require.NotEqual(t, a, warden.EventID("wf", "run", 1, "c", warden.EventToolExecuted, "alice"))
}
