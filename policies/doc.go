// Package policies decides tool calls with OPA: it holds Warden's default
// Rego policy (embedded from bundle/) and the Go evaluator, Engine, that
// prepares the entry point data.warden.authz.decision once and evaluates it
// for every call.
//
// The evaluator fails closed. A policy that does not parse refuses to load;
// a decision that errors, is undefined or does not validate comes back as a
// deny decision together with a non-nil error. Network built-ins such as
// http.send are disabled and built-in errors are fatal, so a policy cannot
// reach out or silently skip a check.
//
// Policies come in pairs, x.rego and x_test.rego; RunTests runs the Rego
// tests through OPA's tester, so neither CI nor `warden policy test` needs
// an opa binary.
package policies
