package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

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
