package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "warden-audit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// No database URL: the embedded SQLite file.
	store, err := audit.Open(ctx, "", filepath.Join(dir, "audit.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	decided := warden.AuditEvent{
		ID:         warden.EventID("wf-1", "run-1", 1, "call-1", warden.EventPolicyDecided, ""),
		Type:       warden.EventPolicyDecided,
		Tenant:     "acme",
		WorkflowID: "wf-1",
		RunID:      "run-1",
		Step:       1,
		CallID:     "call-1",
		Actor:      "policy",
		Tool:       "shell",
		Decision:   warden.VerdictRequireApproval,
		Risk:       warden.RiskHigh,
		Reasons:    []string{"shell is high risk"},
	}
	// A retried activity appends the same event again: it is stored once.
	for range 2 {
		if err := store.Append(ctx, decided); err != nil {
			log.Fatal(err)
		}
	}

	events, err := store.Query(ctx, warden.AuditFilter{WorkflowID: "wf-1"})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.Seq, e.Type, e.Tool, e.Decision, e.Risk, e.Reasons)
	}
	// Output:
	// 1 policy_decided shell require_approval high [shell is high risk]
}
