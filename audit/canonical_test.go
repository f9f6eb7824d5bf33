package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

func TestCanonicalJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		` { "b" : [1, 2.50, -0, 1.5e3, 1E-7, 0.0, 100], "a": "x" } `: `{"a":"x","b":[1,2.5,0,1500,0.0000001,0,100]}`,
		`{"a":1,"a":2}`:                 `{"a":2}`,
		`"<&> \u00e9 \u2028 \t \u0001"`: "\"<&> é \u2028 \\t \\u0001\"",
		`{"é":1,"z":2,"A":3}`:           `{"A":3,"z":2,"é":1}`,
		`12345678901234567890123456789`: `12345678901234567890123456789`,
		`-12.3400e2`:                    `-1234`,
		`[true,false,null,{}]`:          `[true,false,null,{}]`,
		`"\ud800"`:                      "\"\ufffd\"",
	} {
		got, err := CanonicalJSON([]byte(in))
		require.NoError(t, err, in)
		require.Equal(t, want, string(got), in)
	}
	for _, bad := range []string{`{`, `1 2`, `1e1001`, ``} {
		_, err := CanonicalJSON([]byte(bad))
		require.Error(t, err, bad)
	}
}

// TestEventHashIsPinned pins the canonical encoding documented in
// docs/audit.md: changing it breaks every stored chain.
func TestEventHashIsPinned(t *testing.T) {
	t.Parallel()
	e := warden.AuditEvent{ID: "evt_1", Type: warden.EventApprovalDecided, Tenant: "acme", WorkflowID: "wf-1", RunID: "r1",
		Step: 2, CallID: "c1", Actor: "alice", Tool: "issue_refund", Args: json.RawMessage(`{"currency":"USD","amount":250.00}`),
		Decision: "approve", Risk: warden.RiskHigh, RequestID: "apr_1", Message: "verified",
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), PrevHash: "00"}
	b, err := CanonicalEvent(e)
	require.NoError(t, err)
	require.Equal(t, `{"actor":"alice","args":{"amount":250,"currency":"USD"},"call_id":"c1","decision":"approve",`+
		`"event_id":"evt_1","event_type":"approval_decided","input_tokens":0,"message":"verified","model":"",`+
		`"occurred_at":"2026-01-02T03:04:05.000006Z","output_tokens":0,"policy_revision":"","prev_hash":"00",`+
		`"reasons":[],"redactions":[],"request_id":"apr_1","result":null,"risk":"high","run_id":"r1","step":2,`+
		`"tenant":"acme","tool":"issue_refund","v":1,"workflow_id":"wf-1"}`, string(b))
	h, err := EventHash(e)
	require.NoError(t, err)
	require.Len(t, h, 64)
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, seed := range []string{`{"a":[1,2.5e-3,"x"]}`, `"\u0000"`, `-0.0`, `{"b":{"a":null}}`, `1e999`, `"\ud83d\ude00"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CanonicalJSON(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, in)
		}
		again, err := CanonicalJSON(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q (%v)", out, again, err)
		}
	})
}
