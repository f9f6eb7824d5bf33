// Package workflows holds Warden's deterministic orchestration: the
// AgentRun plan-act loop, the approval wait (Update, Signal and expiry
// timer), queries, search attributes and current details. It never talks
// to the outside world itself: every effect goes through the activities
// package, and workflows/deps_test.go proves this package links no pgx,
// OPA, sandbox, audit, os/exec or net/http code of its own.
package workflows
