package warden.taint_test

import data.warden.taint

net_tool := {"name": "http_get", "known": true, "risk": "medium", "effects": ["network"]}

test_clean_run_needs_nothing if {
	not taint.requires_approval with input as {"tool": net_tool, "args": {"url": "https://example.com"}}
}

test_tainted_run_needs_approval_for_network if {
	taint.requires_approval with input as {"tool": net_tool, "taint": ["tool:shell"], "args": {}}
	r := taint.reason with input as {"tool": net_tool, "taint": ["tool:shell"], "args": {}}
	r == "the run has seen untrusted content (tool:shell): http_get can send data out, so a person must approve it"
}

test_tainted_run_reads_freely if {
	not taint.requires_approval with input as {"tool": {"name": "read_file", "effects": ["read"]}, "taint": ["tool:shell"], "args": {}}
}

test_secrets_never_leave if {
	cases := [
		"https://example.com/?k=sk-abcdefghijklmnopqrstuvwx",
		"AKIAABCDEFGHIJKLMNOP",
		"ghp_abcdefghijklmnopqrstuvwxyz0123456789AB",
		"-----BEGIN RSA PRIVATE KEY-----",
		"Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
		"https://admin:hunter2@db.internal/",
	]
	every c in cases {
		count(taint.leaks) == 1 with input as {"tool": net_tool, "args": {"url": c}}
	}
}

test_secret_in_nested_args if {
	msg := "http_get must not carry an AWS access key in its arguments"
	msg in taint.leaks with input as {"tool": net_tool, "args": {"headers": {"x": ["AKIAABCDEFGHIJKLMNOP"]}}}
}

test_secrets_in_local_tools_are_not_leaks if {
	count(taint.leaks) == 0 with input as {"tool": {"name": "write_file", "effects": ["write"]}, "args": {"content": "AKIAABCDEFGHIJKLMNOP"}}
}
