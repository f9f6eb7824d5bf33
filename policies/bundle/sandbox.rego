# Package warden.sandbox holds the checks on the isolation a tool would run
# in (input.sandbox_mode, reported by the worker). In a degraded mode — the
# explicit "process" mode — tools run
# without namespaces, Landlock or seccomp: nothing confines their file
# system or network access. warden.authz denies a call whose deny set here
# is not empty.
package warden.sandbox

# strong_modes confine a tool's file system and network access. Any other
# reported mode — "process", a mode this bundle does not know, a
# non-string value — is degraded: an allow-list, so a new or misspelt
# mode never counts as strong. The worker always reports its mode; inputs
# without one (no key, or "": policy unit tests and Go callers that leave
# PolicyInput.SandboxMode empty) are not judged here.
strong_modes := {"isolated"}

default degraded := false

degraded if {
	"sandbox_mode" in object.keys(input)
	input.sandbox_mode != ""
	not input.sandbox_mode in strong_modes
}

# risky_effects are effects that reach beyond the workspace when nothing
# confines the tool.
risky_effects := {"exec", "network", "payment"}

risky if input.tool.risk in {"high", "critical"}

risky if {
	some effect in input.tool.effects
	effect in risky_effects
}

deny contains msg if {
	degraded
	risky
	msg := sprintf(
		"tool %s is refused in the degraded sandbox mode %q (no namespaces, Landlock or seccomp): it is high risk or has exec, network or payment effects",
		[input.tool.name, mode],
	)
}

mode := input.sandbox_mode if is_string(input.sandbox_mode)

default mode := "(not a string)"
