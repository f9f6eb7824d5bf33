package activities_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
)

// redactingPolicy allows every call and redacts keys.
type redactingPolicy struct{ keys []string }

func (p redactingPolicy) Decide(context.Context, warden.PolicyInput) (warden.Decision, error) {
	d := warden.Decision{Allow: true, Risk: warden.RiskLow, Reasons: []string{"test policy"}}
	d.Obligations.TimeoutSeconds = 30
	d.Obligations.RedactArgs = p.keys
	return d, nil
}

// TestAuthorizeSummarisesTheCall: Authorize carries the call's summary by
// the tool's template, with the policy's redacted keys hidden; the workflow
// shows it as the Execute activity's summary.
func TestAuthorizeSummarisesTheCall(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	authorize := func(call warden.ToolCall, redact ...string) activities.AuthorizeOutput {
		f.acts.Policy = redactingPolicy{keys: redact}
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(f.acts)
		v, err := env.ExecuteLocalActivity(f.acts.Authorize, activities.AuthorizeInput{Run: run, Step: 1, Call: call})
		require.NoError(t, err)
		var out activities.AuthorizeOutput
		require.NoError(t, v.Get(&out))
		return out
	}
	require.Equal(t, "issue_refund 19.99 EUR, order A-1", authorize(refund).Summary)
	require.Equal(t, "issue_refund 19.99 EUR, order [redacted]", authorize(refund, "order_id").Summary)

	read := warden.ToolCall{ID: "c2", Name: "read_file", Args: json.RawMessage(`{"path":"notes.txt"}`)}
	require.Equal(t, "read_file: notes.txt", authorize(read).Summary)

	invalid := warden.ToolCall{ID: "c3", Name: "read_file", Args: json.RawMessage(`{"path":""}`)}
	out := authorize(invalid)
	require.Equal(t, activities.VerdictInvalidArgs, out.Verdict)
	require.Empty(t, out.Summary, "a call refused before the policy is asked has no summary")
}
