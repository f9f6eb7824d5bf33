# Package warden.refund grades issue_refund, the demo payment tool
# (args {order_id, amount_cents, currency, reason}). Every refund needs
# approval by the group refund-approvers within a day (escalated after four
# hours); a large one is critical and needs two signed approvals within four
# hours (escalated after one).
package warden.refund

# critical_above_cents is the amount above which a refund is critical.
critical_above_cents := 500000

# approver_group names the group in data.warden.groups whose members may approve.
approver_group := "refund-approvers"

amount := input.args.amount_cents

valid_amount if {
	is_number(amount)
	amount == round(amount)
	amount > 0
}

valid_currency if regex.match(`^[A-Z]{3}$`, input.args.currency)

large if {
	valid_amount
	amount > critical_above_cents
}

# problems are deny reasons: arguments the schema should have rejected.
problems contains "issue_refund needs amount_cents, a positive whole number of cents" if not valid_amount

problems contains "issue_refund needs currency, a three-letter code such as EUR" if not valid_currency

# permit is what warden.authz uses for an issue_refund call.
permit := {
	"risk": "high",
	"reason": sprintf("issue_refund moves money: high risk, needs approval by %s", [approver_group]),
	"approval": {
		"group": approver_group,
		"quorum": 1,
		"approval_timeout_seconds": 86400,
		"escalate_after_seconds": 14400,
	},
} if not large

permit := {
	"risk": "critical",
	"reason": sprintf(
		"issue_refund of %d cents is above %d: critical risk, needs 2 approvals by %s",
		[amount, critical_above_cents, approver_group],
	),
	"approval": {
		"group": approver_group,
		"quorum": 2,
		"signed": true,
		"approval_timeout_seconds": 14400,
		"escalate_after_seconds": 3600,
	},
} if large
