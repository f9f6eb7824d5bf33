package tools_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/tools"
)

// TestBuiltinSummaries: each built-in tool summarises a call by its own
// template, as the Web UI's activity summary.
func TestBuiltinSummaries(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		tool, args, want string
	}{
		{tools.ToolShell, `{"argv":["ls","-la"]}`, "shell: ls -la"},
		{tools.ToolShell, `{"argv":["sh","-c","grep -r TODO . | head"]}`, "shell: sh -c grep -r TODO . | head"},
		{tools.ToolShell, `{"argv":["echo","` + long + `"]}`, "shell: echo " + strings.Repeat("x", 117-len("shell: echo ")) + "..."},
		{tools.ToolReadFile, `{"path":"notes/todo.txt"}`, "read_file: notes/todo.txt"},
		{tools.ToolWriteFile, `{"path":"out/a.txt","content":"hello","append":true}`, "write_file: out/a.txt"},
		{tools.ToolIssueRefund, `{"order_id":"1234","amount_cents":25000,"currency":"USD","reason":"damaged"}`, "issue_refund 250.00 USD, order 1234"},
		{tools.ToolIssueRefund, `{"order_id":"A-9","amount_cents":1,"currency":"EUR","reason":"r"}`, "issue_refund 0.01 EUR, order A-9"},
		{tools.ToolHTTPGet, `{"url":"https://example.com/status?token=s3cret"}`, "http_get"},
	} {
		spec, ok := r.Spec(tc.tool)
		require.True(t, ok, tc.tool)
		call := warden.ToolCall{ID: "c1", Name: tc.tool, Args: json.RawMessage(tc.args)}
		require.Equal(t, tc.want, spec.Summarize(call, nil), tc.args)
		require.LessOrEqual(t, len(spec.Summarize(call, nil)), 120)
	}

	spec, _ := r.Spec(tools.ToolIssueRefund)
	call := warden.ToolCall{Name: tools.ToolIssueRefund, Args: json.RawMessage(`{"order_id":"1234","amount_cents":25000,"currency":"USD","reason":"r"}`)}
	require.Equal(t, "issue_refund 250.00 USD, order [redacted]", spec.Summarize(call, []string{"order_id", "reason"}),
		"keys the policy redacts stay hidden in the summary")
}

// TestBuiltinSummariesMatchTheWorkflowsOldOnes: the templates give, byte for
// byte, what the workflow package's summarize function computed for the
// built-in tools before the tools owned their summaries (it is kept here,
// verbatim, as the reference), so new runs' activity summaries read as
// before.
func TestBuiltinSummariesMatchTheWorkflowsOldOnes(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	cases := map[string][]string{
		tools.ToolShell: {
			`{"argv":["ls"]}`, `{"argv":["ls","-la","a b"]}`, `{"argv":["printf","%s\n","é—ü"]}`,
			`{"argv":["sh","-c","` + strings.Repeat("echo hi; ", 30) + `"]}`, `{"argv":["<b>&"]}`,
		},
		tools.ToolReadFile:  {`{"path":"a.txt"}`, `{"path":"dir/` + strings.Repeat("d", 150) + `"}`, `{"path":"ü/ñ.md"}`},
		tools.ToolWriteFile: {`{"path":"a.txt","content":"x"}`, `{"path":"b","content":"","append":true}`},
		tools.ToolIssueRefund: {
			`{"order_id":"1234","amount_cents":25000,"currency":"USD","reason":"r"}`,
			`{"order_id":"9","amount_cents":100000000,"currency":"JPY","reason":"r"}`,
			`{"order_id":"x-1","amount_cents":99,"currency":"EUR","reason":"r"}`,
			`{"order_id":"` + strings.Repeat("9", 64) + `","amount_cents":12345678,"currency":"GBP","reason":"r"}`,
		},
		tools.ToolHTTPGet: {`{"url":"https://example.com/"}`},
	}
	for tool, argsList := range cases {
		spec, ok := r.Spec(tool)
		require.True(t, ok, tool)
		for _, args := range argsList {
			call := warden.ToolCall{ID: "c", Name: tool, Args: json.RawMessage(args)}
			require.NoError(t, r.Validate(tool, call.Args), args)
			require.Equal(t, oldWorkflowSummary(call), spec.Summarize(call, nil), args)
		}
	}
}

// oldWorkflowSummary is workflows.summarize as it was (the reference).
func oldWorkflowSummary(call warden.ToolCall) string {
	clip := func(s string) string {
		if len(s) > 120 {
			return s[:117] + "..."
		}
		return s
	}
	var args map[string]any
	_ = json.Unmarshal(call.Args, &args)
	switch call.Name {
	case "shell":
		if argv, ok := args["argv"].([]any); ok {
			parts := make([]string, 0, len(argv))
			for _, p := range argv {
				parts = append(parts, fmt.Sprint(p))
			}
			return clip("shell: " + strings.Join(parts, " "))
		}
	case "issue_refund":
		if cents, ok := args["amount_cents"].(float64); ok {
			return clip(fmt.Sprintf("issue_refund %.2f %v, order %v", cents/100, args["currency"], args["order_id"]))
		}
	case "read_file", "write_file":
		return clip(fmt.Sprintf("%s: %v", call.Name, args["path"]))
	}
	return clip(call.Name)
}
