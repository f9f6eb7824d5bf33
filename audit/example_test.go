package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

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

func ExampleVerify() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "warden-audit-verify")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := audit.Open(ctx, "", filepath.Join(dir, "audit.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	for i, typ := range []warden.EventType{warden.EventRunStarted, warden.EventRunFinished} {
		e := warden.AuditEvent{ID: fmt.Sprint("evt-", i), Type: typ, Tenant: "acme", WorkflowID: "wf-1"}
		if err := store.Append(ctx, e); err != nil {
			log.Fatal(err)
		}
	}
	// Seal the tenant: deleting the whole run would now be detected too.
	if _, err := store.Seal(ctx, "acme"); err != nil {
		log.Fatal(err)
	}
	report, err := audit.Verify(ctx, store, audit.VerifyOptions{Tenant: "acme"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.OK(), report.Events, report.Chains, report.Seals)
	// Output:
	// true 2 1 1
}

func ExampleStore_Retain() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "warden-audit-retain")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := audit.Open(ctx, "", filepath.Join(dir, "audit.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	january := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for i, wf := range []string{"wf-old", "wf-old", "wf-new"} {
		at := january
		if wf == "wf-new" {
			at = time.Now()
		}
		e := warden.AuditEvent{ID: fmt.Sprint("evt-", i), Type: warden.EventRunStarted, Tenant: "acme", WorkflowID: wf, OccurredAt: at}
		if err := store.Append(ctx, e); err != nil {
			log.Fatal(err)
		}
	}
	// Drop acme's runs that ended before February, recorded in a seal.
	seal, err := store.Retain(ctx, audit.RetainOptions{Tenant: "acme", Before: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Actor: "dana"})
	if err != nil {
		log.Fatal(err)
	}
	r := seal.Retention
	fmt.Println(seal.Kind, seal.Index, r.Events, r.Chains[0].WorkflowID, r.Actor)
	// The gap is explained: the log still verifies.
	report, err := audit.Verify(ctx, store, audit.VerifyOptions{Tenant: "acme"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.OK(), report.Events, report.Seals)
	// Output:
	// retention 2 2 wf-old dana
	// true 1 2
}
