package warden.sandbox_test

import data.warden.authz
import data.warden.sandbox

call(name, risk, effects, mode) := {
	"tenant": "acme",
	"requester": "dave",
	"workflow_id": "wf-1",
	"step": 1,
	"tool": {"name": name, "known": true, "risk": risk, "idempotent": false, "effects": effects},
	"args": {"argv": ["ls"]},
	"sandbox_mode": mode,
}

test_isolated_mode_is_not_degraded if {
	not sandbox.degraded with input as call("shell", "medium", ["exec"], "isolated")
	count(sandbox.deny) == 0 with input as call("shell", "medium", ["exec"], "isolated")
}

test_process_mode_refuses_shell if {
	d := authz.decision with input as call("shell", "medium", ["exec"], "process")
	d.allow == false
	some reason in d.reasons
	contains(reason, "degraded sandbox mode \"process\"")
}

test_unknown_or_missing_mode_is_not_judged_here if {
	x := object.remove(call("shell", "medium", ["exec"], ""), ["sandbox_mode"])
	not sandbox.degraded with input as x
	not sandbox.degraded with input as call("shell", "medium", ["exec"], "isolated")
}

test_unknown_modes_are_degraded if {
	every m in ["isolated-lite", "Isolated", "none", "namespaces"] {
		sandbox.degraded with input as call("shell", "medium", ["exec"], m)
	}
	sandbox.degraded with input as call("shell", "medium", ["exec"], {"mode": "isolated"})
	d := authz.decision with input as call("shell", "medium", ["exec"], "isolated-lite")
	d.allow == false
}

test_process_mode_refuses_high_risk_tools if {
	d := authz.decision with input as call("custom_tool", "high", [], "process")
	d.allow == false
}

test_process_mode_refuses_network_and_payment if {
	count(sandbox.deny) == 1 with input as call("http_get", "medium", ["network"], "process")
	count(sandbox.deny) == 1 with input as call("issue_refund", "high", ["payment"], "process")
}

test_process_mode_still_allows_low_risk_file_tools if {
	d := authz.decision with input as object.union(call("read_file", "low", ["read"], "process"), {"args": {"path": "a.txt"}})
	d.allow == true
	w := authz.decision with input as object.union(call("write_file", "medium", ["write"], "process"), {"args": {"path": "a.txt", "content": "x"}})
	w.allow == true
}
