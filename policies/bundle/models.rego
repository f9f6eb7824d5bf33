# Package warden.models decides which models a tenant's runs may use. The
# run's model and its fallbacks are each checked before use.
#
# Policy data (data.warden.model_access):
#   tenants: {"<tenant>": ["<model or glob>", ...]} — when a tenant is
#            listed, only these models; otherwise any model;
#   blocked: ["<model or glob>", ...] — never, for anyone.
# Globs use "/" as the separator: "scripted/*" matches "scripted/demo".
package warden.models

default allow := false

allow if {
	not restricted
	not blocked
}

allow if {
	restricted
	listed
	not blocked
}

restricted if data.warden.model_access.tenants[input.tenant]

listed if {
	some pattern in data.warden.model_access.tenants[input.tenant]
	glob.match(pattern, ["/"], input.model)
}

blocked if {
	some pattern in data.warden.model_access.blocked
	glob.match(pattern, ["/"], input.model)
}

reason := sprintf("model %s is blocked by policy", [input.model]) if {
	blocked
} else := sprintf("tenant %s may not use model %s", [input.tenant, input.model]) if {
	restricted
	not listed
} else := sprintf("tenant %s may use model %s", [input.tenant, input.model])

decision := {"allow": allow, "reason": reason}
