package policies

import (
	"crypto/sha256"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/bounded"
)

// maxCachedDecisions bounds the decision cache and the model decision
// cache; when full, each forgets its least recently used decision.
const maxCachedDecisions = 4096

// decisionCache remembers decisions by the exact policy input. Each call is
// decided twice — by Authorize and again by Execute, the enforcement point
// — and for a call that needs no approval the two inputs are the same
// bytes, so the second answer can come from here. A policy is a pure
// function of its input and data, so an identical input gets the identical
// decision; a policy that reads the clock (or any non-deterministic
// built-in) is never cached (see cacheable).
type decisionCache struct {
	m *bounded.Map[[sha256.Size]byte, warden.Decision]
}

func newDecisionCache() *decisionCache {
	return &decisionCache{m: bounded.New[[sha256.Size]byte, warden.Decision](maxCachedDecisions)}
}

func (c *decisionCache) get(key [sha256.Size]byte) (warden.Decision, bool) {
	d, ok := c.m.Get(key)
	return cloneDecision(d), ok
}

func (c *decisionCache) put(key [sha256.Size]byte, d warden.Decision) {
	c.m.Put(key, cloneDecision(d))
}

// cloneDecision copies the decision's slices and maps, so a caller that
// appends a reason cannot change what the cache holds.
func cloneDecision(d warden.Decision) warden.Decision {
	d.Reasons = slices.Clone(d.Reasons)
	d.Approvers.Users = slices.Clone(d.Approvers.Users)
	d.Approvers.Groups = slices.Clone(d.Approvers.Groups)
	d.Approvers.Keys = maps.Clone(d.Approvers.Keys)
	d.Obligations.RedactArgs = slices.Clone(d.Obligations.RedactArgs)
	d.Obligations.Hosts = slices.Clone(d.Obligations.Hosts)
	return d
}

// cacheable reports whether the policy's answer depends only on its input
// and data: no module calls a non-deterministic built-in such as
// time.now_ns (a business-hours rule must be asked again at execution).
func cacheable(modules map[string]*ast.Module) bool {
	ok := true
	check := func(op ast.Ref) {
		if b, found := ast.BuiltinMap[op.String()]; found && b.Nondeterministic {
			ok = false
		}
	}
	for _, m := range modules {
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if x.IsCall() {
				check(x.Operator())
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if call, isCall := t.Value.(ast.Call); isCall && len(call) > 0 {
				if op, isRef := call[0].Value.(ast.Ref); isRef {
					check(op)
				}
			}
			return false
		})
	}
	return ok
}
