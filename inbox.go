package warden

import (
	"fmt"
	"net/url"
	"strings"
)

// InboxFilter narrows the approver inbox. Zero fields do not filter.
type InboxFilter struct {
	Tenant string
	Risk   Risk
}

// InboxQuery is the Temporal visibility query of the approver inbox.
func InboxQuery(f InboxFilter) string {
	// Only a running workflow can be approved: a run Temporal terminated
	// keeps the search attributes it had when it waited.
	q := fmt.Sprintf("%s=%q AND ExecutionStatus=%q", SearchAttrStatus, SearchStatus(StatusAwaitingApproval), "Running")
	if f.Tenant != "" {
		q += fmt.Sprintf(" AND %s=%q", SearchAttrTenant, f.Tenant)
	}
	if f.Risk != "" {
		q += fmt.Sprintf(" AND %s=%q", SearchAttrRisk, string(f.Risk))
	}
	return q
}

// InboxURL is the Temporal Web UI's workflow list filtered to the approver
// inbox, for example http://127.0.0.1:8233/namespaces/default/workflows?query=...
func InboxURL(uiBase, namespace string, f InboxFilter) string {
	return strings.TrimRight(uiBase, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows?query=" + url.QueryEscape(InboxQuery(f))
}
