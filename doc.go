// Package warden is the vocabulary of Warden, a durable, governed agent engine:
// the domain types shared by the workflow, the activities, the policy engine,
// the audit log and product backends. It links no Temporal or gRPC package,
// so the leaf packages (redact, audit, policies) stay light; the thin Client
// over the Temporal client, for starting runs, reading their status and
// acting on approvals, is in package github.com/wardenhq/warden/client.
//
// A product backend imports this package, the client package and little
// else. It never imports the workflows package: workflow, update, signal and
// query names are string constants here.
package warden
