// Package activities holds Warden's Temporal activities: Plan (the model
// call), Authorize (the policy check, run as a local activity), Execute (the
// enforcement point that re-checks policy and approval evidence, runs the
// tool in the sandbox and writes the audit rows) and Record (audit rows the
// workflow itself produces). Dependencies are small interfaces declared
// here; worker/ supplies the implementations.
//
// The workflows package imports this one for method references and I/O
// types, so this package must never import pgx, OPA, the sandbox or net/http:
// everything outside reaches it through the interfaces in deps.go.
//
// Files, by stage: activities.go (the Activities value, run and call
// references, shared helpers), deps.go (the dependency interfaces),
// plan.go (Plan and its budget), conversation.go (conversations by
// reference and their cache), authorize.go (Authorize and the decision
// logic Plan shares), execute.go (Execute, the enforcement point),
// record.go (Record, RecordIdentities, Escalate and the audit helpers) and
// workspace.go (run workspaces and their records).
package activities
