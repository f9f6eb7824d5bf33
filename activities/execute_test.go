package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/tools"
	"github.com/wardenhq/warden/worker"
)

func TestMain(m *testing.M) {
	tools.Reexec()
	os.Exit(m.Run())
}

type fixture struct {
	acts *activities.Activities
	deps *worker.Deps
	dir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	deps, err := worker.Build(context.Background(), worker.Config{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(deps.Close)
	return &fixture{acts: deps.Activities, deps: deps, dir: dir}
}

var run = activities.RunRef{Tenant: "acme", Requester: "dana", WorkflowID: "wf-1", RunID: "run-1"}

var refund = warden.ToolCall{ID: "call_0_0", Name: "issue_refund",
	Args: json.RawMessage(`{"order_id":"A-1","amount_cents":1999,"currency":"EUR","reason":"damaged"}`)}

// execute runs Execute in Temporal's activity test environment.
func (f *fixture) execute(t *testing.T, in activities.ExecuteInput) (activities.ExecuteOutput, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.acts)
	v, err := env.ExecuteActivity(f.acts.Execute, in)
	var out activities.ExecuteOutput
	if err == nil {
		require.NoError(t, v.Get(&out))
	}
	return out, err
}

func (f *fixture) ledger(t *testing.T) int {
	entries, err := tools.ReadLedger(filepath.Join(f.dir, "refunds.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	return len(entries)
}

// evidence builds approval evidence the way the workflow does.
func (f *fixture) evidence(t *testing.T, call warden.ToolCall, approvers ...string) *warden.ApprovalEvidence {
	t.Helper()
	hash, err := warden.ArgsHash(call.Args)
	require.NoError(t, err)
	dec, err := f.acts.Policy.Decide(context.Background(), warden.PolicyInput{
		Tenant: run.Tenant, Requester: run.Requester, Tool: warden.PolicyTool{Name: call.Name, Known: true, Risk: warden.RiskHigh},
		Args: call.Args,
	})
	require.NoError(t, err)
	return &warden.ApprovalEvidence{
		RequestID: warden.ApprovalRequestID(run.WorkflowID, 1, call.ID, call.Name, hash, dec.PolicyRevision),
		ArgsHash:  hash, Approvers: approvers,
	}
}

func requireErrType(t *testing.T, err error, typ string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, typ, appErr.Type(), appErr.Error())
}

// TestExecuteIsTheEnforcementPoint: whatever the workflow sends, Execute
// runs a high-risk call only with valid evidence bound to this exact call.
func TestExecuteIsTheEnforcementPoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	changed := refund
	changed.Args = json.RawMessage(`{"order_id":"A-1","amount_cents":2999,"currency":"EUR","reason":"damaged"}`)

	cases := []struct {
		name     string
		call     warden.ToolCall
		evidence *warden.ApprovalEvidence
		want     string
	}{
		{"no approval", refund, nil, "requires approval"},
		{"approval for other args", changed, f.evidence(t, refund, "alice"), "does not match this call"},
		// The default policy checks the evidence itself too; either layer may refuse first.
		{"approver not permitted", refund, f.evidence(t, refund, "mallory"), "mallory may not approve|0 valid approvals"},
		{"self approval", refund, f.evidence(t, refund, "dana"), "dana may not approve|0 valid approvals"},
		{"no approvers", refund, f.evidence(t, refund), "needs 1 distinct approvers|0 valid approvals"},
	}
	for _, c := range cases {
		_, err := f.execute(t, activities.ExecuteInput{Run: run, Step: 1, Call: c.call, Approval: c.evidence})
		require.Error(t, err, c.name)
		requireErrType(t, err, warden.ErrTypePolicyDenied)
		require.Regexp(t, c.want, err.Error(), c.name)
	}
	require.Zero(t, f.ledger(t), "no refused call may reach the ledger")

	out, err := f.execute(t, activities.ExecuteInput{Run: run, Step: 1, Call: refund, Approval: f.evidence(t, refund, "alice")})
	require.NoError(t, err)
	require.Contains(t, out.Output.Content, "refund of 19.99 EUR")
	require.Equal(t, 1, f.ledger(t))

	evs, err := f.deps.Audit.Query(context.Background(), warden.AuditFilter{Type: warden.EventToolFailed})
	require.NoError(t, err)
	require.Len(t, evs, 1, "refusals of the same call share one deterministic event ID")
	require.Contains(t, evs[0].Message, "refused at execution")
}

// TestExecuteNeverRerunsANonIdempotentTool: a second attempt of the same
// call finds the tool_started record and reports an unknown outcome.
func TestExecuteNeverRerunsANonIdempotentTool(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := activities.ExecuteInput{Run: run, Step: 1, Call: refund, Approval: f.evidence(t, refund, "alice")}
	_, err := f.execute(t, in)
	require.NoError(t, err)
	_, err = f.execute(t, in)
	requireErrType(t, err, warden.ErrTypeOutcomeUnknown)
	require.Equal(t, 1, f.ledger(t))
	evs, err := f.deps.Audit.Query(context.Background(), warden.AuditFilter{Type: warden.EventToolOutcomeUnknown})
	require.NoError(t, err)
	require.Len(t, evs, 1)
}

type failingPolicy struct{}

func (failingPolicy) Decide(context.Context, warden.PolicyInput) (warden.Decision, error) {
	return warden.Decision{Allow: true}, errors.New("policy engine unavailable")
}

type failingAudit struct{ activities.Audit }

func (failingAudit) Append(context.Context, ...warden.AuditEvent) error {
	return errors.New("database is down")
}

// TestFailClosed: a policy error or an audit outage before the side effect
// means the tool does not run.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	echo := warden.ToolCall{ID: "c1", Name: "write_file", Args: json.RawMessage(`{"path":"proof.txt","content":"ran"}`)}

	f := newFixture(t)
	f.acts.Policy = failingPolicy{}
	_, err := f.execute(t, activities.ExecuteInput{Run: run, Step: 1, Call: echo})
	require.Error(t, err)
	require.ErrorContains(t, err, "policy engine unavailable")

	g := newFixture(t)
	g.acts.Audit = failingAudit{g.acts.Audit}
	_, err = g.execute(t, activities.ExecuteInput{Run: run, Step: 1, Call: echo})
	require.ErrorContains(t, err, "database is down")
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, warden.ErrTypeAudit, appErr.Type(), "an audit outage is typed, so no caller mistakes it for a refusal")
	require.False(t, appErr.NonRetryable(), "the store may come back")

	for _, fx := range []*fixture{f, g} {
		// Through the sandbox's view: with the tmpfs quota the host's
		// workspace folder stays empty.
		workspaces, _ := filepath.Glob(filepath.Join(fx.dir, "workspaces", "*", "*"))
		for _, ws := range workspaces {
			require.NoFileExists(t, filepath.Join(fx.deps.Sandbox.HostPath(ws), "proof.txt"), "the tool ran despite a failure before its side effect")
		}
	}

	// Authorize turns a policy error into a recorded deny.
	h := newFixture(t)
	h.acts.Policy = failingPolicy{}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(h.acts)
	v, err := env.ExecuteLocalActivity(h.acts.Authorize, activities.AuthorizeInput{Run: run, Step: 1, Call: echo})
	require.NoError(t, err)
	var out activities.AuthorizeOutput
	require.NoError(t, v.Get(&out))
	require.Equal(t, warden.VerdictDeny, string(out.Verdict))
	require.Contains(t, out.Message, "policy evaluation failed")
}

// TestExecuteChecksEvidenceEvenWhenThePolicyDoesNot: with a user policy that
// asks for approval but never looks at the evidence, Execute's own check
// still refuses evidence that does not satisfy the decision.
func TestExecuteChecksEvidenceEvenWhenThePolicyDoesNot(t *testing.T) {
	t.Parallel()
	policyDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "lenient.rego"), []byte(`package warden.authz

decision := {
	"allow": true,
	"require_approval": true,
	"reasons": ["test policy: every call needs alice"],
	"risk": "high",
	"approvers": {"users": ["alice"]},
	"quorum": 1,
	"obligations": {"timeout_seconds": 30, "max_output_bytes": 65536},
}
`), 0o644))
	dir := t.TempDir()
	deps, err := worker.Build(context.Background(), worker.Config{DataDir: dir, PolicyDir: policyDir})
	require.NoError(t, err)
	t.Cleanup(deps.Close)
	f := &fixture{acts: deps.Activities, deps: deps, dir: dir}

	for _, c := range []struct {
		approvers []string
		want      string
	}{
		{[]string{"mallory"}, "mallory may not approve"},
		{[]string{"dana"}, "dana may not approve"},
		{nil, "needs 1 distinct approvers, got 0"},
	} {
		_, err := f.execute(t, activities.ExecuteInput{Run: run, Step: 1, Call: refund, Approval: f.evidence(t, refund, c.approvers...)})
		requireErrType(t, err, warden.ErrTypePolicyDenied)
		require.ErrorContains(t, err, c.want)
	}
	require.Zero(t, f.ledger(t))
	_, err = f.execute(t, activities.ExecuteInput{Run: run, Step: 1, Call: refund, Approval: f.evidence(t, refund, "alice")})
	require.NoError(t, err)
	require.Equal(t, 1, f.ledger(t))
}

// TestBinaryToolOutputIsAudited: NUL bytes and invalid UTF-8 in a tool's
// output reach the model and the audit as replacement characters.
func TestBinaryToolOutputIsAudited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	call := warden.ToolCall{ID: "c1", Name: "shell", Args: json.RawMessage(`{"argv":["printf","a\\000b\\377c"]}`)}
	out, err := f.execute(t, activities.ExecuteInput{Run: run, Step: 1, Call: call})
	require.NoError(t, err)
	require.Equal(t, "a\uFFFDb\uFFFDc", out.Output.Content)
	evs, err := f.deps.Audit.Query(context.Background(), warden.AuditFilter{Type: warden.EventToolExecuted})
	require.NoError(t, err)
	require.Len(t, evs, 1)
}

// An unknown tool is said so by a typed field, not only by the message.
func TestAuthorizeNamesAnUnknownTool(t *testing.T) {
	t.Parallel()
	h := newFixture(t)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(h.acts)
	for name, unknown := range map[string]bool{"launch_rockets": true, "read_file": false} {
		v, err := env.ExecuteLocalActivity(h.acts.Authorize, activities.AuthorizeInput{Run: run, Step: 1, Call: warden.ToolCall{ID: "c-" + name, Name: name, Args: json.RawMessage(`{"path":"a"}`)}})
		require.NoError(t, err)
		var out activities.AuthorizeOutput
		require.NoError(t, v.Get(&out))
		require.Equal(t, unknown, out.UnknownTool, name)
		if unknown {
			require.Equal(t, warden.VerdictDeny, string(out.Verdict))
		}
	}
}
