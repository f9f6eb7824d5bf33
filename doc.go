// Package warden is the vocabulary of Warden, a durable, governed agent engine:
// the domain types shared by the workflow, the activities, the policy engine,
// the audit log and product backends, plus a thin Client over the Temporal
// client for starting runs, reading their status and acting on approvals.
//
// A product backend imports this package and little else. It never imports
// the workflows package: workflow, update, signal and query names are string
// constants here.
package warden
