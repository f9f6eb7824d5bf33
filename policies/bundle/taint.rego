# Package warden.taint guards against prompt injection. Tool output is
# untrusted: once a run has seen any (input.taint lists the sources), a
# tool that can move data or money out — network, messages, payments,
# writes outside the workspace — needs a human's approval, and no tool
# that can send data out may carry something that looks like a secret.
package warden.taint

# exfiltration_effects are tool effects that can move data or value out.
exfiltration_effects := {"network", "message", "payment", "write_outside"}

tainted if count(object.get(input, "taint", [])) > 0

can_exfiltrate if {
	some effect in object.get(input.tool, "effects", [])
	effect in exfiltration_effects
}

# requires_approval: a tainted run calls an exfiltration-capable tool.
requires_approval if {
	tainted
	can_exfiltrate
}

reason := sprintf(
	"the run has seen untrusted content (%s): %s can send data out, so a person must approve it",
	[concat(", ", input.taint), input.tool.name],
) if requires_approval

# secret_patterns are shapes of credentials that must never leave.
secret_patterns := {
	"an OpenAI-style API key": `sk-[A-Za-z0-9_-]{20,}`,
	"an AWS access key": `AKIA[0-9A-Z]{16}`,
	"a GitHub token": `gh[pousr]_[A-Za-z0-9]{36,}`,
	"a private key": `-----BEGIN [A-Z ]*PRIVATE KEY-----`,
	"a bearer token": `(?i)bearer [A-Za-z0-9._~+/-]{20,}`,
	"a password in a URL": `[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`,
	"a JSON web token": `eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`,
}

# leaks: deny reasons for secrets in the arguments of a tool that can send data out.
leaks contains sprintf("%s must not carry %s in its arguments", [input.tool.name, name]) if {
	can_exfiltrate
	walk(input.args, [_, value])
	is_string(value)
	some name, pattern in secret_patterns
	regex.match(pattern, value)
}
