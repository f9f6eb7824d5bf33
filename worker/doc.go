// Package worker is Warden's composition root: it turns a Config into every
// dependency (audit store, policy engine, tool registry, sandbox, model),
// registers the AgentRun workflow and its activities, makes sure the
// search attributes exist, and runs until its context is cancelled.
package worker
