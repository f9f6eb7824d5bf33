package tools_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/tools"
)

// BenchmarkValidate measures JSON Schema validation of tool arguments
// against a baseline in the same run: decoding the same bytes into an
// interface{} (which validation has to do anyway).
//
//	go test ./tools -run '^$' -bench Validate -benchmem
func BenchmarkValidate(b *testing.B) {
	r, err := tools.NewRegistry(tools.Options{})
	require.NoError(b, err)
	for _, bc := range []struct{ tool, args string }{
		{"shell", `{"argv":["grep","-rn","TODO","."]}`},
		{"issue_refund", `{"order_id":"A-1","amount_cents":1999,"currency":"EUR","reason":"damaged in transit"}`},
	} {
		args := json.RawMessage(bc.args)
		b.Run("baseline_decode/"+bc.tool, func(b *testing.B) {
			for b.Loop() {
				var v any
				if err := json.Unmarshal(args, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("validate/"+bc.tool, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Validate(bc.tool, args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
