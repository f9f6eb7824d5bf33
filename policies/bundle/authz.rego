# Package warden.authz is Warden's default tool-call policy. Its entry
# point, decision, answers every tool call a model asks for with the object
# the Go evaluator decodes into warden.Decision (it fills policy_revision).
#
# Everything is denied unless a rule here permits it: the tool must be
# registered (input.tool.known), have a permit, and pass that tool's checks.
# Approvers come from data.warden.groups; a missing group means nobody may
# approve, so the call can never run.
package warden.authz

import data.warden.http
import data.warden.refund
import data.warden.sandbox
import data.warden.shell
import data.warden.taint

# decision is the entry point: data.warden.authz.decision.
decision := {
	"allow": allow,
	"require_approval": require_approval,
	"reasons": reasons,
	"risk": risk,
	"approvers": approvers,
	"quorum": quorum,
	"obligations": obligations,
}

# ---------------------------------------------------------------------------
# The verdict.

default allow := false

# allow: a registered tool with a permit and not one deny reason.
allow if {
	known
	permit
	count(deny) == 0
}

default require_approval := false

require_approval if {
	allow
	permit.approval
}

# After untrusted input, tools that can send data or money out need a
# person's approval (warden.taint), whatever their permit says.
require_approval if {
	allow
	taint.requires_approval
}

# ---------------------------------------------------------------------------
# The call.

default tool := ""

tool := input.tool.name if is_string(input.tool.name)

known if input.tool.known == true

risk_levels := {"low", "medium", "high", "critical"}

# ---------------------------------------------------------------------------
# Permits: the tools this policy lets run, their risk, why, and who must
# approve them ({"group", "quorum"}), if anyone.

# governed_tools have a permit of their own. Any other registered tool is
# permitted only when its author marked it high or critical risk, and then
# only with approval by the group approvers.
governed_tools := {"read_file", "write_file", "shell", "issue_refund", "http_get"}

permit := {
	"risk": "low",
	"reason": "read_file only reads files: low risk",
} if tool == "read_file"

permit := {
	"risk": "medium",
	"reason": "write_file changes files in the run's workspace: medium risk",
} if tool == "write_file"

permit := {
	"risk": "medium",
	"reason": "shell command passed every dangerous-command check: medium risk, runs in the sandbox",
} if tool == "shell"

permit := refund.permit if tool == "issue_refund"

permit := http.permit if tool == "http_get"

permit := {
	"risk": input.tool.risk,
	"reason": sprintf("%s is marked %s risk by its author: needs approval by approvers", [tool, input.tool.risk]),
	"approval": {"group": "approvers", "quorum": 1},
} if {
	not tool in governed_tools
	input.tool.risk in {"high", "critical"}
}

# ---------------------------------------------------------------------------
# Deny reasons. Any one denies the call.

deny contains sprintf("unknown tool %q: no tool is registered under that name", [tool]) if not known

deny contains sprintf("no rule permits tool %q: tools are denied unless the policy permits them", [tool]) if {
	known
	not permit
}

deny contains reason if {
	known
	tool == "shell"
	some reason in shell.deny
}

deny contains reason if {
	known
	tool == "issue_refund"
	some reason in refund.problems
}

deny contains reason if {
	known
	tool == "http_get"
	some reason in http.problems
}

# Nothing that looks like a secret leaves through a tool that can send data out.
deny contains reason if {
	known
	some reason in taint.leaks
}

# A degraded sandbox mode refuses risky tools (see warden.sandbox).
deny contains reason if {
	known
	some reason in sandbox.deny
}

# When the Execute activity re-checks an approved call, the evidence must
# hold enough approvals by permitted approvers.
deny contains msg if {
	known
	permit.approval
	input.approval
	count(valid_approvals) < quorum
	msg := sprintf(
		"approval evidence has %d valid approvals of the %d required (by members of %s, never the requester)",
		[count(valid_approvals), quorum, approval_group],
	)
}

# ---------------------------------------------------------------------------
# Risk: the permit's grade; critical for unknown tools and dangerous
# commands; otherwise the author's hint, or critical without one.

risk := "critical" if {
	not known
} else := "critical" if {
	dangerous_command
} else := permit.risk if {
	permit
} else := input.tool.risk if {
	input.tool.risk in risk_levels
} else := "critical"

dangerous_command if {
	tool == "shell"
	count(shell.deny) > 0
}

# ---------------------------------------------------------------------------
# Approvers and quorum.

default quorum := 1

quorum := permit.approval.quorum if permit.approval

approval_group := permit.approval.group if {
	permit.approval
} else := "approvers"

# approver_users are the members of the approval group in data.warden.groups.
approver_users := {user |
	some user in data.warden.groups[approval_group]
	is_string(user)
}

default approvers := {"users": [], "groups": []}

approvers := {
	"users": sort(approver_users),
	"groups": [approval_group],
	"require_signature": signed,
	"keys": approver_keys,
} if require_approval

# signed: the permit demands Ed25519-signed approvals, verified against the
# public keys in data.warden.approver_keys.
default signed := false

signed if permit.approval.signed == true

approver_keys := {user: key |
	some user in approver_users
	key := data.warden.approver_keys[user]
	is_string(key)
}

# may_approve mirrors warden.Approvers.Permits: a listed user (or anyone,
# for "*"), never the requester.
may_approve(name) if {
	is_string(name)
	name != ""
	name != input.requester
	some user in approver_users
	user in {name, "*"}
}

valid_approvals := {name |
	some name in input.approval.approvers
	may_approve(name)
}

# ---------------------------------------------------------------------------
# Obligations: limits every permitted call runs under.

obligations := object.union(run_obligations, approval_obligations)

default run_obligations := {"timeout_seconds": 30, "max_output_bytes": 65536}

run_obligations := {"timeout_seconds": 60, "max_output_bytes": 65536} if tool == "shell"

# http_get reaches exactly the granted host:port of its URL, through the
# worker's egress proxy; every other tool gets no network.
run_obligations := {"timeout_seconds": 30, "max_output_bytes": 65536, "hosts": http.hosts} if {
	tool == "http_get"
	count(http.hosts) > 0
}

# approval_obligations carry the permit's approval settings: expiry,
# escalation and whether a rejection stops the run.
approval_setting_names := {"approval_timeout_seconds", "escalate_after_seconds", "stop_on_reject"}

default approval_obligations := {}

approval_obligations := {name: value |
	some name in approval_setting_names
	value := permit.approval[name]
} if require_approval

# ---------------------------------------------------------------------------
# Reasons: why the call is denied, or why it may run (and what approval it
# still needs). Never empty.

reasons := sort(deny) if {
	count(deny) > 0
} else := array.concat([permit.reason], sort(approval_notes)) if {
	permit
} else := ["denied: no rule permits this call"]

approval_notes contains sprintf("group %s has no members in policy data: nobody can approve this call", [approval_group]) if {
	require_approval
	count(approver_users) == 0
}

approval_notes contains msg if {
	require_approval
	count(approver_users) > 0
	not "*" in approver_users
	eligible := approver_users - {input.requester}
	count(eligible) < quorum
	msg := sprintf(
		"only %d members of %s besides the requester may approve, %d approvals are required: this call cannot be approved",
		[count(eligible), approval_group, quorum],
	)
}

approval_notes contains sprintf("approvals must be signed (Ed25519); public keys are configured for %d of %d approvers", [count(approver_keys), count(approver_users)]) if {
	require_approval
	signed
}

approval_notes contains taint.reason if require_approval

approval_notes contains sprintf("approved by %s", [concat(", ", sort(valid_approvals))]) if {
	require_approval
	input.approval
	count(valid_approvals) >= quorum
}
