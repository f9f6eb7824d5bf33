package redact

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

func TestDefaultRulesCompile(t *testing.T) {
	t.Parallel()
	_, err := New(DefaultRules())
	require.NoError(t, err)
}

func TestText(t *testing.T) {
	t.Parallel()
	r := Default()
	for _, tc := range []struct {
		in, want string
		rule     string
	}{
		{"key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789 used", "key [REDACTED:api_key] used", "api_key"},
		{"AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_access_key]", "aws_access_key"},
		{"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED:aws_secret_key]", "aws_secret_key"},
		{"token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB ok", "token [REDACTED:github_token] ok", "github_token"},
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "[REDACTED:jwt]", "jwt"},
		{"Authorization: Bearer abcdef0123456789abcdef", "Authorization: Bearer [REDACTED:bearer_token]", "bearer_token"},
		{"postgres://admin:S3cr3t@db.internal:5432/prod", "postgres://admin:[REDACTED:url_password]@db.internal:5432/prod", "url_password"},
		{"login with password=hunter22 now", "login with password=[REDACTED:secret_assignment] now", "secret_assignment"},
		{"mail jane.doe@example.co.uk today", "mail [REDACTED:email] today", "email"},
		{"call +1 415-555-0132", "call [REDACTED:phone]", "phone"},
		{"call (415) 555-0199.", "call [REDACTED:phone].", "phone"},
		{"card 4111 1111 1111 1111 ok", "card [REDACTED:card_number] ok", "card_number"},
		{"card 5500-0000-0000-0004", "card [REDACTED:card_number]", "card_number"},
		{"ssn 078-05-1120", "ssn [REDACTED:us_ssn]", "us_ssn"},
		{"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nafter", "[REDACTED:private_key]\nafter", "private_key"},
	} {
		got, c := r.Text(tc.in)
		require.Equal(t, tc.want, got, tc.in)
		require.Positive(t, c[tc.rule], tc.in)
	}
	for _, keep := range []string{
		"order A-1234 of 250.00 USD on 2026-01-02",
		"not a card 4111 1111 1111 1112",
		"not an ssn 666-12-3456 or 000-12-3456",
		"version 1.2.3, port 5432, pid 12345",
		"sk-short",
	} {
		got, c := r.Text(keep)
		require.Equal(t, keep, got)
		require.Empty(t, c)
	}
}

func TestJSONKeepsValidJSONAndRedactsKeysAndNumbers(t *testing.T) {
	t.Parallel()
	r := Default()
	in := json.RawMessage(`{"user":"jane@example.com","password":"hunter2","card":4012888888881881,"amount":250.5,
		"nested":[{"Authorization":"Basic dXNlcjpwYXNz"},"ok"],"empty":{"password":""}}`)
	out, c, err := r.JSON(in)
	require.NoError(t, err)
	require.True(t, json.Valid(out))
	var v map[string]any
	require.NoError(t, json.Unmarshal(out, &v))
	require.Equal(t, "[REDACTED:email]", v["user"])
	require.Equal(t, "[REDACTED:secret_key]", v["password"])
	require.Equal(t, "[REDACTED:card_number]", v["card"])
	require.EqualValues(t, 250.5, v["amount"])
	require.Equal(t, "[REDACTED:secret_key]", v["nested"].([]any)[0].(map[string]any)["Authorization"])
	require.Equal(t, map[string]int{"email": 1, "secret_key": 2, "card_number": 1}, c)

	same, _, err := r.JSON(in)
	require.NoError(t, err)
	require.Equal(t, out, same, "deterministic")

	clean := json.RawMessage(`{"b": 1,  "a": "x"}`)
	out, c, err = r.JSON(clean)
	require.NoError(t, err)
	require.Equal(t, clean, out, "untouched JSON is returned as is")
	require.Empty(t, c)

	_, _, err = r.JSON(json.RawMessage(`{"broken"`))
	require.Error(t, err)
}

func TestRedactEvent(t *testing.T) {
	t.Parallel()
	r := Default()
	e := warden.AuditEvent{ID: "e", Message: "sent to jane@example.com and bob@example.com",
		Args: json.RawMessage(`{"to":"jane@example.com","api_key":"abc123"}`), Result: json.RawMessage(`"ok"`)}
	got, err := r.Redact(e)
	require.NoError(t, err)
	require.Equal(t, "sent to [REDACTED:email] and [REDACTED:email]", got.Message)
	require.Equal(t, []warden.Redaction{
		{Field: "args", Rule: "email", Count: 1}, {Field: "args", Rule: "secret_key", Count: 1},
		{Field: "message", Rule: "email", Count: 2},
	}, got.Redactions)
	require.JSONEq(t, `"ok"`, string(got.Result))
	again, err := r.Redact(e)
	require.NoError(t, err)
	require.Equal(t, got, again)
}

func TestFromConfig(t *testing.T) {
	t.Parallel()
	r, err := FromConfig(nil)
	require.NoError(t, err)
	s, _ := r.Text("jane@example.com")
	require.Equal(t, "[REDACTED:email]", s)

	r, err = FromConfig(json.RawMessage(`{"disable":["email"],"rules":[{"name":"employee_id","pattern":"\\bEMP-[0-9]{6}\\b"},{"name":"acme_key","key":"(?i)^x-acme-key$"}]}`))
	require.NoError(t, err)
	s, c := r.Text("jane@example.com EMP-123456")
	require.Equal(t, "jane@example.com [REDACTED:employee_id]", s)
	require.Equal(t, 1, c["employee_id"])
	out, _, err := r.JSON(json.RawMessage(`{"X-Acme-Key":"v"}`))
	require.NoError(t, err)
	require.JSONEq(t, `{"X-Acme-Key":"[REDACTED:acme_key]"}`, string(out))

	r, err = FromConfig(json.RawMessage(`{"defaults":false,"rules":[{"name":"x","pattern":"\\bxx\\b"}]}`))
	require.NoError(t, err)
	s, _ = r.Text("xx jane@example.com")
	require.Equal(t, "[REDACTED:x] jane@example.com", s)

	for _, bad := range []string{
		`{"disable":["nope"]}`,
		`{"rules":[{"name":"","pattern":"x"}]}`,
		`{"rules":[{"name":"a","pattern":"("}]}`,
		`{"rules":[{"name":"a"}]}`,
		`{"rules":[{"name":"a","pattern":"x","key":"y"}]}`,
		`{"rules":[{"name":"a","pattern":"x","check":"crc"}]}`,
		`{"rules":[{"name":"a","pattern":"x","group":2}]}`,
		`{"rules":[{"name":"email","pattern":"x"}]}`,
		`{"unknown":1}`,
	} {
		_, err := FromConfig(json.RawMessage(bad))
		require.Error(t, err, bad)
		require.True(t, strings.Contains(err.Error(), "data.warden.redaction"), bad)
	}
}

func BenchmarkRedact(b *testing.B) {
	r := Default()
	clean := warden.AuditEvent{ID: "e", Message: "ran ls -la in the workspace",
		Args:   json.RawMessage(`{"cmd":"ls","argv":["-la","/workspace"],"timeout_seconds":30}`),
		Result: json.RawMessage(`{"exit_code":0,"stdout":"` + strings.Repeat("drwxr-xr-x 2 agent agent 4096 Jan  2 15:04 dir\\n", 30) + `","truncated":false}`)}
	dirty := clean
	dirty.Args = json.RawMessage(`{"url":"https://admin:S3cr3t@api.example.com/v1","headers":{"Authorization":"Bearer abcdef0123456789abcdef"},"to":"jane@example.com"}`)
	dirty.Result = json.RawMessage(`{"body":"card 4111 1111 1111 1111, ssn 078-05-1120, key sk-proj-abcdefghijklmnopqrstuvwxyz0123"}`)
	for _, bc := range []struct {
		name string
		e    warden.AuditEvent
	}{{"clean-2KB", clean}, {"secrets", dirty}, {"adversarial-100KB", warden.AuditEvent{ID: "e",
		Result: json.RawMessage(`"` + strings.Repeat("0-", 50000) + `"`)}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.e.Args) + len(bc.e.Result) + len(bc.e.Message)))
			for b.Loop() {
				if _, err := r.Redact(bc.e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
