package redact

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// FuzzJSON: whatever JSON goes in, valid JSON comes out, the same every
// time, and redacting the output again changes nothing.
func FuzzJSON(f *testing.F) {
	for _, s := range loadCorpus(f) {
		if s.kind == "json" {
			f.Add(s.input)
		}
	}
	f.Add(`{"a":[1,"x",{"b":null}],"sk-proj-abcdefghijklmnopqrstuvwxyz01":"v"}`)
	r := Default()
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			_, _, err := r.JSON(json.RawMessage(in))
			if err == nil && strings.TrimSpace(in) != "" {
				t.Fatalf("invalid JSON %q accepted", in)
			}
			return
		}
		out, _, err := r.JSON(json.RawMessage(in))
		require.NoError(t, err)
		require.True(t, json.Valid(out), "output %q of %q is not JSON", out, in)
		again, _, err := r.JSON(json.RawMessage(in))
		require.NoError(t, err)
		require.Equal(t, string(out), string(again), "deterministic")
		twice, _, err := r.JSON(out)
		require.NoError(t, err)
		require.JSONEq(t, string(out), string(twice), "idempotent")
	})
}

// FuzzSecretInContext: a known secret, set off by spaces in any text,
// never survives.
func FuzzSecretInContext(f *testing.F) {
	secrets := []string{
		"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
		"AKIAIOSFODNN7EXAMPLE",
		"ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
		"4111 1111 1111 1111",
		"DE89370400440532013000",
		"jane.doe@example.com",
	}
	for i, s := range loadCorpus(f) {
		f.Add(s.input, "", uint8(i))
	}
	r := Default()
	f.Fuzz(func(t *testing.T, prefix, suffix string, which uint8) {
		secret := secrets[int(which)%len(secrets)]
		in := prefix + " " + secret + " " + suffix
		out, _ := r.Text(in)
		if strings.Contains(out, secret) && !strings.Contains(prefix+suffix, secret) {
			t.Fatalf("%q survives in %q", secret, out)
		}
	})
}

// TestEveryTextFieldOfAnEvent: reasons are redacted like the message; the
// actor and request ID lose secrets but keep the identity they name.
func TestEveryTextFieldOfAnEvent(t *testing.T) {
	t.Parallel()
	r := Default()
	e := warden.AuditEvent{ID: "e", Type: warden.EventPolicyDecided,
		Reasons:   []string{"path /etc/AKIAIOSFODNN7EXAMPLE/creds is outside the workspace", "mail jane@example.com is not allowed", "plain"},
		Actor:     "jane@example.com sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
		RequestID: "apr_1 token=abcdefabcdef0123",
	}
	got, err := r.Redact(e)
	require.NoError(t, err)
	require.Equal(t, []string{"path /etc/[REDACTED:aws_access_key]/creds is outside the workspace", "mail [REDACTED:email] is not allowed", "plain"}, got.Reasons)
	require.Equal(t, "jane@example.com [REDACTED:api_key]", got.Actor, "an identity stays; a secret goes")
	require.Equal(t, "apr_1 token=[REDACTED:secret_assignment]", got.RequestID)
	require.Equal(t, []warden.Redaction{
		{Field: "actor", Rule: "api_key", Count: 1},
		{Field: "reasons", Rule: "aws_access_key", Count: 1}, {Field: "reasons", Rule: "email", Count: 1},
		{Field: "request_id", Rule: "secret_assignment", Count: 1},
	}, got.Redactions)
	require.Equal(t, []string{"path /etc/AKIAIOSFODNN7EXAMPLE/creds is outside the workspace", "mail jane@example.com is not allowed", "plain"}, e.Reasons, "the input event is not modified")

	clean := warden.AuditEvent{ID: "c", Reasons: []string{"ok"}, Actor: "alice", RequestID: "apr_2"}
	same, err := r.Redact(clean)
	require.NoError(t, err)
	require.Equal(t, clean, same)
}
