package audit

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// runViews pins the documented SQL views on a backend.
func runViews(t *testing.T, b backend, query func(t testing.TB, loc, sql string) []string) {
	t.Parallel()
	s, loc := b.fresh(t)
	ev := func(id string, typ warden.EventType, actor string) warden.AuditEvent {
		return warden.AuditEvent{ID: id, Type: typ, Tenant: "acme", WorkflowID: "wf-1", Step: 2, CallID: "c1", Tool: "issue_refund", Actor: actor}
	}
	req := ev("r", warden.EventToolRequested, "model")
	req.Args = json.RawMessage(`{"amount":250}`)
	dec := ev("d", warden.EventPolicyDecided, "policy")
	dec.Decision, dec.Risk, dec.PolicyRevision = warden.VerdictRequireApproval, warden.RiskHigh, "sha256:abc"
	appr := ev("a", warden.EventApprovalDecided, "alice")
	appr.Decision, appr.Args = "approve", req.Args
	done := ev("x", warden.EventToolExecuted, "sandbox")
	done.Result = json.RawMessage(`{"ok":true}`)
	require.NoError(t, s.Append(t.Context(), req, dec, appr, done))
	got := query(t, loc, "SELECT tool || '|' || policy_decision || '|' || risk || '|' || policy_revision || '|' || approvals || '|' || outcome FROM audit_tool_calls")
	require.Equal(t, []string{"issue_refund|require_approval|high|sha256:abc|alice: approve|tool_executed"}, got)
	got = query(t, loc, "SELECT approver || '|' || decision FROM audit_approvals")
	require.Equal(t, []string{"alice|approve"}, got)
}

func TestPostgresViews(t *testing.T) {
	runViews(t, postgresBackend, func(t testing.TB, dsn, sql string) []string {
		rows, err := pgConnect(t, dsn).Query(t.Context(), sql)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		return out
	})
}

func TestSQLiteViews(t *testing.T) {
	runViews(t, sqliteBackend, func(t testing.TB, path, sql string) []string {
		rows, err := sqliteConnect(t, path).QueryContext(t.Context(), sql)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		return out
	})
}
