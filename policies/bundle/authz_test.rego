package warden.authz_test

import data.warden.authz

# call is the input for a call to a registered tool, requested by dave.
call(name, args) := {
	"tenant": "acme",
	"requester": "dave",
	"workflow_id": "wf-1",
	"step": 1,
	"tool": {"name": name, "known": true, "risk": "medium", "idempotent": false},
	"args": args,
	"sandbox_mode": "isolated",
}

# hinted is a call to a registered tool no rule names, with its author's risk hint.
hinted(name, risk) := object.union(call(name, {}), {"tool": {"risk": risk}})

unknown(name) := object.union(call(name, {"count": 3}), {"tool": {"known": false}})

refund(amount) := call("issue_refund", {"order_id": "1234", "amount_cents": amount, "currency": "USD", "reason": "parcel lost"})

# approved adds the approval evidence the Execute activity sends.
approved(x, approvers) := object.union(x, {"approval": {"request_id": "apr_1", "args_hash": "h", "approvers": approvers}})

default_obligations := {"timeout_seconds": 30, "max_output_bytes": 65536}

# ---------------------------------------------------------------------------
# Allowed tools.

test_read_file_allowed_low_risk if {
	d := authz.decision with input as call("read_file", {"path": "notes.txt"})
	d.allow == true
	d.require_approval == false
	d.risk == "low"
	d.reasons == ["read_file only reads files: low risk"]
	d.obligations == default_obligations
	d.approvers == {"users": [], "groups": []}
	d.quorum == 1
}

test_write_file_allowed_medium_risk if {
	d := authz.decision with input as call("write_file", {"path": "out.txt", "content": "hi"})
	d.allow == true
	d.require_approval == false
	d.risk == "medium"
	d.reasons == ["write_file changes files in the run's workspace: medium risk"]
}

test_safe_shell_allowed_medium_risk_60s if {
	d := authz.decision with input as call("shell", {"argv": ["ls", "-la"]})
	d.allow == true
	d.require_approval == false
	d.risk == "medium"
	d.obligations == {"timeout_seconds": 60, "max_output_bytes": 65536}
	d.reasons == ["shell command passed every dangerous-command check: medium risk, runs in the sandbox"]
}

# ---------------------------------------------------------------------------
# Denied calls.

test_dangerous_shell_denied_critical if {
	d := authz.decision with input as call("shell", {"argv": ["rm", "-rf", "/"]})
	d.allow == false
	d.require_approval == false
	d.risk == "critical"
	d.reasons == [`rm -r on "/" would delete everything under it`]
}

test_shell_without_argv_denied if {
	d := authz.decision with input as call("shell", {"command": "ls"})
	d.allow == false
	d.reasons == ["shell needs args.argv, a non-empty array of strings"]
}

test_unknown_tool_denied if {
	d := authz.decision with input as unknown("launch_rockets")
	d.allow == false
	d.risk == "critical"
	d.reasons == [`unknown tool "launch_rockets": no tool is registered under that name`]
}

test_unknown_tool_with_a_governed_name_denied if {
	d := authz.decision with input as object.union(call("read_file", {"path": "x"}), {"tool": {"known": false}})
	d.allow == false
	d.reasons == [`unknown tool "read_file": no tool is registered under that name`]
}

test_missing_tool_denied if {
	d := authz.decision with input as {"args": {}}
	d.allow == false
	d.risk == "critical"
	d.reasons == [`unknown tool "": no tool is registered under that name`]
}

test_unnamed_low_risk_tool_denied_by_default if {
	d := authz.decision with input as hinted("http_get", "low")
	d.allow == false
	d.risk == "low"
	d.reasons == [`no rule permits tool "http_get": tools are denied unless the policy permits them`]
}

test_unnamed_tool_without_hint_denied if {
	x := json.remove(call("mystery", {}), ["tool/risk"])
	d := authz.decision with input as x
	d.allow == false
	d.risk == "critical"
}

# ---------------------------------------------------------------------------
# Approval.

test_refund_needs_approval_by_refund_approvers if {
	d := authz.decision with input as refund(25000)
	d.allow == true
	d.require_approval == true
	d.risk == "high"
	d.approvers == {"users": ["alice", "bob", "carol"], "groups": ["refund-approvers"], "require_signature": false, "keys": {}}
	d.quorum == 1
	d.reasons == ["issue_refund moves money: high risk, needs approval by refund-approvers"]
	d.obligations == object.union(default_obligations, {"approval_timeout_seconds": 86400, "escalate_after_seconds": 14400})
}

test_large_refund_is_critical_with_quorum_2 if {
	d := authz.decision with input as refund(600000)
	d.allow == true
	d.require_approval == true
	d.risk == "critical"
	d.quorum == 2
	d.approvers.users == ["alice", "bob", "carol"]
	d.reasons == [
		"issue_refund of 600000 cents is above 500000: critical risk, needs 2 approvals by refund-approvers",
		"approvals must be signed (Ed25519); public keys are configured for 0 of 3 approvers",
	]
}

test_refund_with_bad_amount_denied if {
	d := authz.decision with input as refund(-100)
	d.allow == false
	d.require_approval == false
	d.reasons == ["issue_refund needs amount_cents, a positive whole number of cents"]
}

test_refund_without_group_data_nobody_can_approve if {
	d := authz.decision with input as refund(25000) with data.warden.groups as {}
	d.allow == true
	d.require_approval == true
	d.approvers == {"users": [], "groups": ["refund-approvers"], "require_signature": false, "keys": {}}
	"group refund-approvers has no members in policy data: nobody can approve this call" in d.reasons
}

test_unreachable_quorum_is_explained if {
	x := object.union(refund(600000), {"requester": "alice"})
	d := authz.decision with input as x with data.warden.groups as {"refund-approvers": ["alice", "bob"]}
	d.require_approval == true
	msg := "only 1 members of refund-approvers besides the requester may approve, 2 approvals are required: this call cannot be approved"
	msg in d.reasons
}

test_high_risk_tool_needs_approvers_group if {
	d := authz.decision with input as hinted("deploy", "high") with data.warden.groups.approvers as ["erin", "frank"]
	d.allow == true
	d.require_approval == true
	d.risk == "high"
	d.quorum == 1
	d.approvers == {"users": ["erin", "frank"], "groups": ["approvers"], "require_signature": false, "keys": {}}
	d.reasons == ["deploy is marked high risk by its author: needs approval by approvers"]
}

test_critical_risk_tool_needs_approval if {
	d := authz.decision with input as hinted("drop_database", "critical") with data.warden.groups.approvers as ["erin"]
	d.allow == true
	d.require_approval == true
	d.risk == "critical"
}

test_high_risk_tool_without_approvers_group_fails_closed if {
	d := authz.decision with input as hinted("deploy", "high")
	d.require_approval == true
	d.approvers == {"users": [], "groups": ["approvers"], "require_signature": false, "keys": {}}
	"group approvers has no members in policy data: nobody can approve this call" in d.reasons
}

test_group_members_must_be_strings if {
	d := authz.decision with input as refund(100) with data.warden.groups as {"refund-approvers": ["alice", 7, null, "bob", "alice"]}
	d.approvers.users == ["alice", "bob"]
}

# ---------------------------------------------------------------------------
# Approval evidence, as the Execute activity re-checks an approved call.

test_valid_approval_evidence_allows if {
	d := authz.decision with input as approved(refund(25000), ["alice"])
	d.allow == true
	d.require_approval == true
	"approved by alice" in d.reasons
}

test_approval_by_the_requester_does_not_count if {
	x := object.union(approved(refund(25000), ["alice"]), {"requester": "alice"})
	d := authz.decision with input as x
	d.allow == false
	d.reasons == ["approval evidence has 0 valid approvals of the 1 required (by members of refund-approvers, never the requester)"]
}

test_approval_by_an_outsider_does_not_count if {
	d := authz.decision with input as approved(refund(25000), ["mallory"])
	d.allow == false
}

test_critical_refund_needs_two_distinct_approvers if {
	two := authz.decision with input as approved(refund(600000), ["bob", "alice"])
	two.allow == true
	"approved by alice, bob" in two.reasons

	one := authz.decision with input as approved(refund(600000), ["alice", "alice"])
	one.allow == false
}

test_malformed_approval_evidence_denies if {
	d := authz.decision with input as object.union(refund(25000), {"approval": {"approvers": "alice"}})
	d.allow == false
}

# ---------------------------------------------------------------------------
# Every decision is complete and explained.

test_every_decision_has_every_field_and_a_reason[name] if {
	some name, x in {
		"read_file": call("read_file", {"path": "a"}),
		"shell": call("shell", {"argv": ["ls"]}),
		"dangerous shell": call("shell", {"argv": ["sudo", "ls"]}),
		"refund": refund(100),
		"large refund": refund(900000),
		"unknown": unknown("x"),
		"hinted": hinted("deploy", "high"),
		"unnamed low": hinted("http_get", "low"),
		"empty input": {},
	}
	d := authz.decision with input as x
	object.keys(d) == {"allow", "require_approval", "reasons", "risk", "approvers", "quorum", "obligations"}
	count(d.reasons) > 0
	d.risk in {"low", "medium", "high", "critical"}
	d.quorum >= 1
}

test_allowed_only_when_known if {
	every name in ["read_file", "write_file", "shell", "issue_refund"] {
		d := authz.decision with input as object.union(call(name, {}), {"tool": {"known": false}})
		d.allow == false
	}
}

test_refund_decision_carries_approval_obligations if {
	d := authz.decision with input as {
		"tenant": "acme", "requester": "dana",
		"tool": {"name": "issue_refund", "known": true, "risk": "high"},
		"args": {"order_id": "1", "amount_cents": 100, "currency": "EUR", "reason": "x"},
	}
	d.obligations.approval_timeout_seconds == 86400
	d.obligations.escalate_after_seconds == 14400
	d.approvers.require_signature == false
}

test_critical_refund_needs_signed_approvals_with_keys_from_data if {
	d := authz.decision with input as {
		"tenant": "acme", "requester": "dana",
		"tool": {"name": "issue_refund", "known": true, "risk": "high"},
		"args": {"order_id": "1", "amount_cents": 900000, "currency": "EUR", "reason": "x"},
	}
		with data.warden.approver_keys as {"alice": "a-key", "mallory": "m-key"}
	d.approvers.require_signature == true
	d.approvers.keys == {"alice": "a-key"}
	d.quorum == 2
	"approvals must be signed (Ed25519); public keys are configured for 1 of 3 approvers" in d.reasons
}

test_tainted_run_needs_approval_for_http_get if {
	d := authz.decision with input as {
		"tenant": "acme", "requester": "dana", "taint": ["tool:shell"],
		"tool": {"name": "http_get", "known": true, "risk": "medium", "effects": ["network"]},
		"args": {"url": "https://api.example.com/status"},
	}
		with data.warden.network.allowed_hosts as ["api.example.com:443"]
		with data.warden.groups.approvers as ["erin"]
	d.allow == true
	d.require_approval == true
	d.approvers.users == ["erin"]
	"the run has seen untrusted content (tool:shell): http_get can send data out, so a person must approve it" in d.reasons
}

test_clean_run_http_get_needs_no_approval if {
	d := authz.decision with input as {
		"tenant": "acme", "requester": "dana",
		"tool": {"name": "http_get", "known": true, "risk": "medium", "effects": ["network"]},
		"args": {"url": "https://api.example.com/status"},
	}
		with data.warden.network.allowed_hosts as ["api.example.com:443"]
	d.allow == true
	d.require_approval == false
}

test_secret_in_http_get_is_denied if {
	d := authz.decision with input as {
		"tenant": "acme", "requester": "dana",
		"tool": {"name": "http_get", "known": true, "risk": "medium", "effects": ["network"]},
		"args": {"url": "https://api.example.com/?key=AKIAABCDEFGHIJKLMNOP"},
	}
		with data.warden.network.allowed_hosts as ["api.example.com:443"]
	d.allow == false
	"http_get must not carry an AWS access key in its arguments" in d.reasons
}
