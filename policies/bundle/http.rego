# Package warden.http holds the checks of the http_get tool
# ({"url": "https://host[:port]/path"}). No host is reachable by default:
# data.warden.network.allowed_hosts lists the host:port pairs a call may
# reach, and warden.authz grants the URL's pair as the call's obligation
# "hosts", which the worker's egress proxy enforces.
package warden.http

# granted_hosts are the granted host:port pairs, lower case.
granted_hosts := {lower(h) | some h in data.warden.network.allowed_hosts; is_string(h)}

default_ports := {"http": "80", "https": "443"}

# parts are [scheme, host, port] of args.url when it is an http(s) URL.
parts := [scheme, host, port] if {
	is_string(input.args.url)
	matches := regex.find_all_string_submatch_n(
		`^(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:([0-9]{1,5}))?([/?#].*)?$`,
		input.args.url, 1,
	)
	count(matches) == 1
	m := matches[0]
	scheme := m[1]
	host := lower(m[2])
	port := port_of(scheme, m[4])
}

port_of(scheme, explicit) := explicit if explicit != ""

port_of(scheme, "") := default_ports[scheme]

# target is the host:port the call would reach.
target := sprintf("%s:%s", [parts[1], parts[2]])

default hosts := []

hosts := [target] if target in granted_hosts

permit := {
	"risk": "medium",
	"reason": sprintf("http_get of a host the policy grants (%s): medium risk, through the egress proxy only", [target]),
} if target in granted_hosts

# A call without a parseable http(s) URL has no permit, so warden.authz
# denies it ("no rule permits"); the schema requires the URL anyway.

problems contains sprintf("host %s is not granted to http_get (data.warden.network.allowed_hosts): no network by default", [target]) if {
	parts
	not target in granted_hosts
}
