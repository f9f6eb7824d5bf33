package warden.http_test

import data.warden.authz

get(url) := {
	"tenant": "acme",
	"requester": "dave",
	"workflow_id": "wf-1",
	"step": 1,
	"tool": {"name": "http_get", "known": true, "risk": "medium", "idempotent": true, "effects": ["network"]},
	"args": {"url": url},
	"sandbox_mode": "isolated",
}

test_no_network_by_default if {
	d := authz.decision with input as get("https://example.com/")
	d.allow == false
	"host example.com:443 is not granted to http_get (data.warden.network.allowed_hosts): no network by default" in d.reasons
	not d.obligations.hosts
}

test_granted_host_becomes_the_obligation if {
	d := authz.decision with input as get("https://API.example.com/v1/status?x=1")
		with data.warden.network.allowed_hosts as ["api.example.com:443"]
	d.allow == true
	d.require_approval == false
	d.risk == "medium"
	d.obligations.hosts == ["api.example.com:443"]
	d.obligations.timeout_seconds == 30
}

test_port_must_match if {
	d := authz.decision with input as get("http://api.example.com:8080/")
		with data.warden.network.allowed_hosts as ["api.example.com:443", "api.example.com:80"]
	d.allow == false
}

test_default_http_port if {
	d := authz.decision with input as get("http://127.0.0.1/x")
		with data.warden.network.allowed_hosts as ["127.0.0.1:80"]
	d.obligations.hosts == ["127.0.0.1:80"]
}

test_bad_urls_denied if {
	every url in ["ftp://example.com/", "https://", "https://user@evil.com@example.com/", "example.com", 3] {
		d := authz.decision with input as get(url) with data.warden.network.allowed_hosts as ["example.com:443"]
		d.allow == false
	}
}

test_other_tools_get_no_hosts if {
	d := authz.decision with input as object.union(get(""), {"tool": {"name": "read_file", "effects": ["read"]}, "args": {"path": "a"}})
		with data.warden.network.allowed_hosts as ["example.com:443"]
	d.allow == true
	not d.obligations.hosts
}

test_degraded_mode_refuses_http_get if {
	d := authz.decision with input as object.union(get("https://example.com/"), {"sandbox_mode": "process"})
		with data.warden.network.allowed_hosts as ["example.com:443"]
	d.allow == false
}
