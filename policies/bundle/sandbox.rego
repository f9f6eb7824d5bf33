# Package warden.sandbox holds the checks on the isolation a tool would run
# in (input.sandbox_mode, reported by the worker). In a degraded mode — the
# explicit "process" mode — tools run
# without namespaces, Landlock or seccomp: nothing confines their file
# system or network access. warden.authz denies a call whose deny set here
# is not empty.
package warden.sandbox

# weak_modes run tools without file system or network confinement. The
# worker always reports its mode; inputs without one (policy unit tests,
# callers that predate sandbox modes) are not judged here.
weak_modes := {"process"}

default degraded := false

degraded if input.sandbox_mode in weak_modes

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

default mode := ""
