package warden.refund_test

import data.warden.refund

refund_args(amount) := {"order_id": "1234", "amount_cents": amount, "currency": "USD", "reason": "parcel lost"}

test_refund_is_high_risk_with_one_approval if {
	permit := refund.permit with input as {"args": refund_args(25000)}
	permit.risk == "high"
	permit.approval.group == "refund-approvers"
	permit.approval.quorum == 1
	not permit.approval.signed
	permit.approval.approval_timeout_seconds == 86400
	permit.approval.escalate_after_seconds == 14400
	permit.reason == "issue_refund moves money: high risk, needs approval by refund-approvers"
}

test_refund_at_the_threshold_is_high if {
	permit := refund.permit with input as {"args": refund_args(500000)}
	permit.risk == "high"
}

test_refund_above_the_threshold_is_critical_with_two_approvals if {
	permit := refund.permit with input as {"args": refund_args(500001)}
	permit.risk == "critical"
	permit.approval.group == "refund-approvers"
	permit.approval.quorum == 2
	permit.approval.signed == true
	permit.approval.approval_timeout_seconds == 14400
	permit.approval.escalate_after_seconds == 3600
	permit.reason == "issue_refund of 500001 cents is above 500000: critical risk, needs 2 approvals by refund-approvers"
}

test_valid_refund_has_no_problems if {
	count(refund.problems) == 0 with input as {"args": refund_args(1999)}
}

test_bad_amounts_are_problems[name] if {
	some name, amount in {"zero": 0, "negative": -5, "fraction": 10.5, "string": "lots", "null": null}
	problems := refund.problems with input as {"args": refund_args(amount)}
	"issue_refund needs amount_cents, a positive whole number of cents" in problems
}

test_bad_currency_is_a_problem if {
	args := object.union(refund_args(100), {"currency": "dollars"})
	problems := refund.problems with input as {"args": args}
	problems == {"issue_refund needs currency, a three-letter code such as EUR"}
}
