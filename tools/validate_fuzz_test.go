package tools_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/wardenhq/warden/tools"
)

// FuzzValidateRefund checks that whatever passes Validate decodes strictly
// into RefundArgs and meets every constraint the schema states.
func FuzzValidateRefund(f *testing.F) {
	for _, seed := range []string{
		`{"order_id":"1234","amount_cents":25000,"currency":"USD","reason":"damaged"}`,
		`{"order_id":"1234","amount_cents":"250","currency":"USD","reason":"x"}`,
		`{"order_id":"a","amount_cents":1e3,"currency":"EUR","reason":"r"}`,
		`{"order_id":"a","amount_cents":100000000,"currency":"EUR","reason":"r","x":null}`,
		`{"order_id":"\u0000","amount_cents":-1,"currency":"US","reason":""}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	r, err := tools.NewRegistry(tools.Options{})
	if err != nil {
		f.Fatal(err)
	}
	orderID := regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	currency := regexp.MustCompile(`^[A-Z]{3}$`)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := r.Validate(tools.ToolIssueRefund, raw); err != nil {
			return
		}
		var args tools.RefundArgs
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&args); err != nil {
			t.Fatalf("valid arguments %q do not decode: %v", raw, err)
		}
		if !orderID.MatchString(args.OrderID) || !currency.MatchString(args.Currency) ||
			args.AmountCents < 1 || args.AmountCents > 100_000_000 || args.Reason == "" {
			t.Fatalf("valid arguments %q break a constraint: %+v", raw, args)
		}
	})
}
