package warden_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

func TestSummarizeCall(t *testing.T) {
	t.Parallel()
	call := func(args string) warden.ToolCall {
		return warden.ToolCall{ID: "c1", Name: "pay", Args: json.RawMessage(args)}
	}
	for _, tc := range []struct {
		name, template, args, want string
		redact                     []string
	}{
		{"plain", "pay {who}", `{"who":"ann"}`, "pay ann", nil},
		{"number literal kept", "n={n} f={f}", `{"n":100000000,"f":1.50}`, "n=100000000 f=1.50", nil},
		{"bool", "{b}", `{"b":true}`, "true", nil},
		{"object as compact json", "{o}", `{"o":{"b":1, "a":"<x>"}}`, `{"a":"<x>","b":1}`, nil},
		{"cents", "{a|cents} / {b|cents}", `{"a":25000,"b":5}`, "250.00 / 0.05", nil},
		{"join", "run {argv|join}", `{"argv":["ls",1,true,"a b"]}`, "run ls 1 true a b", nil},
		{"join empty", "run {argv|join}.", `{"argv":[]}`, "run .", nil},
		{"braces", "{{literal}} {x}}}", `{"x":"y"}`, "{literal} y}", nil},
		{"redacted", "pay {who} {amount|cents}", `{"who":"ann","amount":5}`, "pay [redacted] 0.05", []string{"who"}},
		{"redacted whatever the filter", "{amount|cents}", `{"amount":5}`, "[redacted]", []string{"amount"}},
		{"empty template", "", `{"who":"ann"}`, "pay", nil},
		{"missing argument", "pay {who}", `{}`, "pay", nil},
		{"null argument", "pay {who}", `{"who":null}`, "pay", nil},
		{"cents of a string", "{a|cents}", `{"a":"5"}`, "pay", nil},
		{"join of a string", "{a|join}", `{"a":"ls"}`, "pay", nil},
		{"args not an object", "pay {who}", `["ann"]`, "pay", nil},
		{"args not json", "pay {who}", `{`, "pay", nil},
		{"malformed template", "pay {who", `{"who":"ann"}`, "pay", nil},
		{"clipped", "{s}", `{"s":"` + strings.Repeat("é", 100) + `"}`, strings.Repeat("é", 100)[:117] + "...", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := warden.SummarizeCall(tc.template, call(tc.args), tc.redact)
			require.Equal(t, tc.want, got)
			require.Equal(t, got, warden.ToolSpec{Summary: tc.template}.Summarize(call(tc.args), tc.redact))
		})
	}
	long := warden.ToolCall{Name: strings.Repeat("n", 130)}
	require.Equal(t, strings.Repeat("n", 117)+"...", warden.SummarizeCall("", long, nil))
}

func TestParseSummary(t *testing.T) {
	t.Parallel()
	names, err := warden.ParseSummary("issue_refund {amount_cents|cents} {currency}, order {order_id} ({currency})")
	require.NoError(t, err)
	require.Equal(t, []string{"amount_cents", "currency", "order_id"}, names)

	names, err = warden.ParseSummary("")
	require.NoError(t, err)
	require.Empty(t, names)

	for template, want := range map[string]string{
		"a {b":        "unclosed {",
		"a } b":       "unmatched }",
		"{}":          "argument name",
		"{1x}":        "argument name",
		"{a-b}":       "argument name",
		"{a|upper}":   "unknown filter",
		"{a|cents|x}": "unknown filter",
	} {
		_, err := warden.ParseSummary(template)
		require.ErrorContains(t, err, want, template)
	}
}

// TestToolSpecSummaryTravelsAsJSON: the template is data, so a spec that
// crosses a process boundary summarises the same.
func TestToolSpecSummaryTravelsAsJSON(t *testing.T) {
	t.Parallel()
	spec := warden.ToolSpec{Name: "read_file", Summary: "read_file: {path}"}
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	var back warden.ToolSpec
	require.NoError(t, json.Unmarshal(b, &back))
	call := warden.ToolCall{Name: "read_file", Args: json.RawMessage(`{"path":"a.txt"}`)}
	require.Equal(t, "read_file: a.txt", back.Summarize(call, nil))

	b, err = json.Marshal(warden.ToolSpec{Name: "x"})
	require.NoError(t, err)
	require.NotContains(t, string(b), "summary", "no template, no key: specs without one encode as before")
}
