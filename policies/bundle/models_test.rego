package warden.models_test

import data.warden.models

test_any_model_without_restrictions if {
	d := models.decision with input as {"tenant": "acme", "model": "gpt-4o"}
	d.allow == true
}

test_tenant_list_restricts if {
	d := models.decision with input as {"tenant": "acme", "model": "gpt-4o"}
		with data.warden.model_access.tenants as {"acme": ["scripted/*", "gpt-4o-mini"]}
	d.allow == false
	d.reason == "tenant acme may not use model gpt-4o"
}

test_tenant_list_glob_allows if {
	d := models.decision with input as {"tenant": "acme", "model": "scripted/demo"}
		with data.warden.model_access.tenants as {"acme": ["scripted/*"]}
	d.allow == true
}

test_blocked_model_refused_for_everyone if {
	d := models.decision with input as {"tenant": "globex", "model": "scripted/broken"}
		with data.warden.model_access.blocked as ["scripted/broken"]
	d.allow == false
	d.reason == "model scripted/broken is blocked by policy"
}
