// Package activities holds Warden's Temporal activities: Plan (the model
// call), Authorize (the policy check, run as a local activity), Execute (the
// enforcement point that re-checks policy and approval evidence, runs the
// tool in the sandbox and writes the audit rows) and Record (audit rows the
// workflow itself produces). Dependencies are small interfaces declared
// here; worker/ supplies the implementations.
//
// The workflows package imports this one for method references and I/O
// types, so this package must never import pgx, OPA, the sandbox or net/http:
// everything outside reaches it through the interfaces below.
package activities
