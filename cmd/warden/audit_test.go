package main

import (
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
)

// seedAudit writes a small trail of two tenants into dataDir's SQLite store.
func seedAudit(t *testing.T, dataDir string) {
	t.Helper()
	s, err := audit.Open(t.Context(), "", filepath.Join(dataDir, "audit.db"))
	require.NoError(t, err)
	defer s.Close()
	base := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	ev := func(id, tenant, wf string, typ warden.EventType, actor string, min int) warden.AuditEvent {
		return warden.AuditEvent{ID: id, Type: typ, Tenant: tenant, WorkflowID: wf, Actor: actor, OccurredAt: base.Add(time.Duration(min) * time.Minute)}
	}
	refund := ev("e2", "acme", "wf-1", warden.EventPolicyDecided, "policy", 1)
	refund.Tool, refund.Decision, refund.Risk = "issue_refund", warden.VerdictRequireApproval, warden.RiskHigh
	refund.Args = json.RawMessage(`{"order":"A-1234","amount":250}`)
	approved := ev("e3", "acme", "wf-1", warden.EventApprovalDecided, "alice", 2)
	approved.Decision, approved.Message = "approve", "customer verified, see \"ticket\", 42"
	require.NoError(t, s.Append(t.Context(),
		ev("e1", "acme", "wf-1", warden.EventRunStarted, "dana", 0), refund, approved,
		ev("g1", "globex", "wf-2", warden.EventRunStarted, "gus", 3)))
}

func TestCLIAuditQueryVerifyExport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seedAudit(t, dir)
	data := []string{"--data-dir", dir}

	out, err := cli(t, append([]string{"audit", "--approver", "alice", "-o", "jsonl"}, data...)...)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out, "\n"))
	require.Contains(t, out, `"event_id":"e3"`)
	require.Contains(t, out, `"hash":"`)

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--risk", "high"}, []string{"e2"}},
		{[]string{"--actor", "dana"}, []string{"e1"}},
		{[]string{"--text", "a-1234"}, []string{"e2"}},
		{[]string{"--text", "100%"}, []string{}},
		{[]string{"--tenant", "acme", "--since", "2026-06-01T09:01:00Z", "--until", "2026-06-01T09:02:00Z"}, []string{"e2"}},
		{[]string{"--after-seq", "2", "--limit", "1"}, []string{"e3"}},
	} {
		out, err := cli(t, append(append([]string{"audit", "-o", "csv"}, tc.args...), data...)...)
		require.NoError(t, err, tc.args)
		records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, csvHeader, records[0])
		ids := []string{}
		for _, r := range records[1:] {
			ids = append(ids, r[22])
		}
		require.Equal(t, tc.want, ids, tc.args)
	}

	out, err = cli(t, append([]string{"audit", "seal"}, data...)...)
	require.NoError(t, err)
	require.Contains(t, out, "acme\tseal #1")
	require.Contains(t, out, "globex\tseal #1")

	out, err = cli(t, append([]string{"audit", "verify"}, data...)...)
	require.NoError(t, err)
	require.Contains(t, out, "checked 4 events in 2 chains and 2 seals")
	require.Contains(t, out, "OK")

	export := filepath.Join(t.TempDir(), "acme.jsonl")
	_, err = cli(t, append([]string{"audit", "export", "--tenant", "acme", "--file", export}, data...)...)
	require.NoError(t, err)
	out, err = cli(t, "audit", "verify", "--file", export)
	require.NoError(t, err)
	require.Contains(t, out, "checked 3 events in 1 chains and 1 seals")

	// The database owner rewrites the approver: verify names the row and fails.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "audit.db"))
	require.NoError(t, err)
	_, err = db.Exec("DROP TRIGGER audit_events_no_update; UPDATE audit_events SET actor = 'mallory' WHERE event_id = 'e3'")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	out, err = cli(t, append([]string{"audit", "verify"}, data...)...)
	require.True(t, errors.Is(err, audit.ErrTampered), "%v", err)
	require.Contains(t, out, "FIRST BROKEN LINK: tenant acme workflow wf-1 seq 3 event e3: content does not match its hash")
	out, err = cli(t, append([]string{"audit", "verify", "-o", "json", "--workflow", "wf-1"}, data...)...)
	require.Error(t, err)
	var report audit.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(out), &report))
	require.Equal(t, "e3", report.Breaks[0].EventID)
	// The export taken before still verifies: it is evidence of the original.
	_, err = cli(t, "audit", "verify", "--file", export)
	require.NoError(t, err)

	_, err = cli(t, append([]string{"audit", "-o", "xml"}, data...)...)
	require.ErrorContains(t, err, `unknown output format "xml"`)
	_, err = cli(t, append([]string{"audit", "--until", "someday"}, data...)...)
	require.ErrorContains(t, err, "--until")
}

func TestCLIAuditRetain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seedAudit(t, dir)
	data := []string{"--data-dir", dir}
	retain := func(args ...string) (string, error) {
		return cli(t, append(append([]string{"audit", "retain"}, args...), data...)...)
	}

	_, err := retain("--before", "2160h")
	require.ErrorContains(t, err, "--tenant is required")
	_, err = retain("--tenant", "acme")
	require.ErrorContains(t, err, "--before is required")
	_, err = retain("--tenant", "acme", "--before", "last year")
	require.ErrorContains(t, err, "--before")
	_, err = retain("--tenant", "acme", "--before", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	require.ErrorContains(t, err, "is in the future")
	_, err = retain("--tenant", "acme", "--before", "2026-06-01T09:00:00Z")
	require.ErrorIs(t, err, audit.ErrNothingToRetain)

	// acme's run wf-1 ended at 09:02; globex is another tenant.
	out, err := retain("--tenant", "acme", "--before", "2026-06-01T09:03:00Z", "--dry-run", "--actor", "dana")
	require.NoError(t, err)
	require.Contains(t, out, "would drop 3 events in 1 runs of tenant acme that ended before 2026-06-01T09:03:00Z")
	require.Contains(t, out, "wf-1\t3\t1..3\t")
	require.Contains(t, out, "dry run: nothing was dropped")
	out, err = cli(t, append([]string{"audit", "--tenant", "acme", "-o", "jsonl"}, data...)...)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(out, "\n"))

	out, err = retain("--tenant", "acme", "--before", "2026-06-01T09:03:00Z", "--actor", "dana")
	require.NoError(t, err)
	require.Contains(t, out, "dropped 3 events in 1 runs")
	require.Regexp(t, `acme\tretention seal #2\tby dana at \S+\tdigest [0-9a-f]{64}\t[0-9a-f]{64}\n`, out)
	out, err = cli(t, append([]string{"audit", "--tenant", "acme", "-o", "jsonl"}, data...)...)
	require.NoError(t, err)
	require.Empty(t, out)

	out, err = cli(t, append([]string{"audit", "verify"}, data...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, "checked 1 events in 1 chains and 2 seals; 1 events not sealed yet")
	export := filepath.Join(t.TempDir(), "all.jsonl")
	_, err = cli(t, append([]string{"audit", "export", "--file", export}, data...)...)
	require.NoError(t, err)
	out, err = cli(t, "audit", "verify", "--file", export)
	require.NoError(t, err, out)

	_, err = retain("--tenant", "acme", "--before", "2026-06-01T09:03:00Z")
	require.ErrorIs(t, err, audit.ErrNothingToRetain)
	out, err = retain("--tenant", "globex", "--before", "2026-06-02T00:00:00Z", "--dry-run", "-o", "json")
	require.NoError(t, err)
	var seal audit.Seal
	require.NoError(t, json.Unmarshal([]byte(out), &seal))
	require.Equal(t, audit.SealKindRetention, seal.Kind)
	require.Equal(t, "wf-2", seal.Retention.Chains[0].WorkflowID)
}
