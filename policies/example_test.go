package policies_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/policies"
)

func ExampleEngine_Decide() {
	ctx := context.Background()
	engine, err := policies.New(ctx, policies.Options{}) // the embedded default policy
	if err != nil {
		panic(err)
	}
	d, err := engine.Decide(ctx, warden.PolicyInput{
		Tenant:    "acme",
		Requester: "dave",
		Tool:      warden.PolicyTool{Name: "issue_refund", Known: true, Risk: warden.RiskHigh},
		Args:      json.RawMessage(`{"order_id": "1234", "amount_cents": 25000, "currency": "USD", "reason": "parcel lost"}`),
	})
	if err != nil {
		// d denies: callers fail closed even if they ignore err.
		fmt.Println("policy error:", err)
	}
	fmt.Println(d.Verdict(), d.Risk, d.Approvers.Users, d.Quorum)
	fmt.Println(d.Reasons[0])
	// Output:
	// require_approval high [alice bob carol] 1
	// issue_refund moves money: high risk, needs approval by refund-approvers
}

func ExampleRunTests() {
	results, err := policies.RunTests(context.Background(), policies.Options{})
	if err != nil {
		panic(err)
	}
	failed := 0
	for _, r := range results {
		if !r.Passed && !r.Skipped {
			failed++
			fmt.Println(r.Name, r.Failure)
		}
	}
	fmt.Println("failed:", failed)
	// Output: failed: 0
}
