package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/redact"
)

// secretCorpus holds realistic secrets and personal data, each with the
// rule that must catch it.
var secretCorpus = []struct{ value, rule string }{
	{"sk-proj-Q2x9vLm4Tb7Rk1Zp8Yw3Hs6Jd0Fg5Nc", "api_key"},
	{"sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Ji0HgFeDc", "api_key"},
	{"sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key"},
	{"AKIAIOSFODNN7EXAMPLE", "aws_access_key"},
	{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_key"},
	{"ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3sXy", "github_token"},
	{"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", "github_token"},
	{"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"},
	{"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU", "jwt"},
	{"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "private_key"},
	{"Tr0ub4dor&3xyz", "url_password"},
	{"c0rrect-h0rse-battery", "secret_key"},
	{"9f8e7d6c5b4a39281706f5e4d3c2b1a0", "bearer_token"},
	{"jane.doe@example.com", "email"},
	{"+44 20 7946 0958", "phone"},
	{"(415) 555-0132", "phone"},
	{"4111 1111 1111 1111", "card_number"},
	{"5500-0000-0000-0004", "card_number"},
	{"4012888888881881", "card_number"},
	{"078-05-1120", "us_ssn"},
}

func redactionCorpusEvents() []warden.AuditEvent {
	c := func(i int) string { return secretCorpus[i].value }
	args := fmt.Sprintf(`{"api_keys":[%q,%q,%q],"aws":{"id":%q,"note":"aws_secret_access_key=%s"},"git":%q,"pat":%q,`+
		`"slack":%q,"session":%q,"pem":"-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n",`+
		`"dsn":"postgres://app:%s@db.internal/prod","password":%q,"card":%s}`,
		c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), c(8), c(9), c(10), c(11), c(18))
	result := fmt.Sprintf(`{"stdout":"curl -H 'Authorization: Bearer %s' https://api.example.com\ncontact %s, phone %s or %s\n",`+
		`"rows":[{"card":%q},{"card":%q},{"ssn":%q}]}`, c(12), c(13), c(14), c(15), c(16), c(17), c(19))
	return []warden.AuditEvent{
		{ID: "leak-1", Type: warden.EventToolExecuted, Tenant: "acme", WorkflowID: "wf-leak", Step: 1, Tool: "http_get",
			Args: json.RawMessage(args), Result: json.RawMessage(result),
			Message: "called with " + c(0) + " for " + c(13) + ", card " + c(16)},
		{ID: "leak-2", Type: warden.EventModelCalled, Tenant: "acme", WorkflowID: "wf-leak", Step: 2,
			Result: json.RawMessage(fmt.Sprintf(`{"content":"The SSN is %s and the key is %s"}`, c(19), c(5)))},
	}
}

// runRedactionCorpus appends the corpus through WithRedactor and scans the
// stored rows: no secret reaches the table, the rows say which rules
// fired, the JSON stays valid, and a retry leaves the chain unchanged.
func runRedactionCorpus(t *testing.T, b backend, rows func(t testing.TB, loc string) []string) {
	t.Parallel()
	inner, loc := b.fresh(t)
	s := WithRedactor(inner, redact.Default())
	ctx := t.Context()
	events := redactionCorpusEvents()
	require.NoError(t, s.Append(ctx, events...))
	require.NoError(t, s.Append(ctx, events...), "a retry redacts identically and is skipped")

	raw := rows(t, loc)
	require.Len(t, raw, 2)
	for _, secret := range secretCorpus {
		for _, row := range raw {
			require.NotContains(t, row, secret.value, "rule %s", secret.rule)
		}
	}
	got, err := s.Query(ctx, warden.AuditFilter{WorkflowID: "wf-leak"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	fired := map[string]bool{}
	for _, e := range got {
		require.True(t, json.Valid(e.Result))
		for _, r := range e.Redactions {
			fired[r.Rule] = true
			require.Positive(t, r.Count)
		}
	}
	for _, secret := range secretCorpus {
		require.True(t, fired[secret.rule], "rule %s fired", secret.rule)
	}
	require.Contains(t, string(got[0].Args), "[REDACTED:url_password]")
	require.Contains(t, got[0].Message, "[REDACTED:email]")
	report, err := Verify(ctx, s, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.EqualValues(t, 2, report.Events)

	// Nothing that does not parse gets through unredacted either.
	err = s.Append(ctx, warden.AuditEvent{ID: "bad", Type: warden.EventToolExecuted, Tenant: "acme", WorkflowID: "wf-leak",
		Args: json.RawMessage(`{"password":"` + secretCorpus[11].value)})
	require.ErrorIs(t, err, ErrInvalidEvent)
}

func TestPostgresRedactionCorpus(t *testing.T) {
	runRedactionCorpus(t, postgresBackend, func(t testing.TB, dsn string) []string {
		rows, err := pgConnect(t, dsn).Query(t.Context(), "SELECT e::text FROM audit_events e")
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

func TestSQLiteRedactionCorpus(t *testing.T) {
	runRedactionCorpus(t, sqliteBackend, func(t testing.TB, path string) []string {
		cols := strings.Split(columns, ", ")
		for i, c := range cols {
			cols[i] = "coalesce(" + c + ", '')"
		}
		rows, err := sqliteConnect(t, path).QueryContext(t.Context(), "SELECT "+strings.Join(cols, " || '|' || ")+" FROM audit_events")
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
