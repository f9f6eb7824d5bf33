package policies

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/wardenhq/warden/internal/bounded"
)

// ModelQuery is the policy's entry point for model choice: an object
// {"allow": bool, "reason": string} for input {"tenant", "model"}.
const ModelQuery = "data.warden.models.decision"

// AllowModel asks the policy whether tenant may use model. A policy with
// no rule for ModelQuery restricts nothing; an evaluation error refuses.
func (e *Engine) AllowModel(ctx context.Context, tenant, model string) (bool, string, error) {
	key := [2]string{tenant, model}
	if e.modelDecisions != nil {
		if d, ok := e.modelDecisions.Get(key); ok {
			return d.allow, d.reason, nil
		}
	}
	allow, reason, err := e.allowModel(ctx, tenant, model)
	if err == nil && e.modelDecisions != nil {
		e.modelDecisions.Put(key, modelDecision{allow, reason})
	}
	return allow, reason, err
}

func (e *Engine) allowModel(ctx context.Context, tenant, model string) (bool, string, error) {
	rs, err := e.models.Eval(ctx, rego.EvalInput(map[string]any{"tenant": tenant, "model": model}))
	if err != nil {
		return false, "model policy evaluation failed", fmt.Errorf("decide model %s: %w: %v", model, ErrEvaluation, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return true, "no model policy", nil
	}
	d, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return false, "malformed model decision", fmt.Errorf("decide model %s: %w: not an object", model, ErrInvalidDecision)
	}
	allow, _ := d["allow"].(bool)
	reason, _ := d["reason"].(string)
	return allow, reason, nil
}

type modelDecision struct {
	allow  bool
	reason string
}

// modelCache remembers model decisions by tenant and model: Plan asks
// before every model call, and the answer only changes with the policy.
type modelCache = bounded.Map[[2]string, modelDecision]

func newModelCache() *modelCache {
	return bounded.New[[2]string, modelDecision](maxCachedDecisions)
}
