package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/wardenhq/warden"
)

// DecisionQuery is the policy's entry point. It must evaluate to an object
// shaped like warden.Decision's JSON (policy_revision is filled by Go).
const DecisionQuery = "data.warden.authz.decision"

// Obligations a decision gets when the policy leaves them zero.
const (
	DefaultTimeoutSeconds = 30
	DefaultMaxOutputBytes = 64 << 10
)

// Errors Decide wraps, so callers can tell a broken policy from a broken
// evaluation. Either way the decision that comes with them denies.
var (
	// ErrInvalidDecision wraps a decision Warden cannot use: undefined,
	// malformed or out of range.
	ErrInvalidDecision = errors.New("invalid policy decision")
	// ErrEvaluation wraps a failure to evaluate the policy, such as a
	// built-in error, conflicting rule values or a cancelled context.
	ErrEvaluation = errors.New("policy evaluation failed")
)

// unsafeBuiltins are the built-ins a tool policy may not call: they reach
// the network, read the worker's environment, or make a decision
// irreproducible (the Execute activity re-checks the same call and must get
// the same answer).
var unsafeBuiltins = map[string]struct{}{
	"http.send":          {},
	"net.lookup_ip_addr": {},
	"opa.runtime":        {},
	"rand.intn":          {},
	"uuid.rfc4122":       {},
}

// Options says where the policy comes from.
type Options struct {
	// Dir is a directory of Rego policies (*.rego, with tests in
	// *_test.rego) and data.json documents, read recursively; a data.json
	// in the sub-directory a/b is mounted at data.a.b. Hidden directories
	// are skipped. Empty means the default policy embedded in Warden.
	Dir string
}

// Engine evaluates the policy's decision for tool calls. The query is
// prepared once, in New; an Engine is safe for concurrent use.
// *Engine implements activities.Policy.
type Engine struct {
	query    rego.PreparedEvalQuery
	models   rego.PreparedEvalQuery
	revision string
	// decisions and modelDecisions are nil when the policy is not
	// cacheable (it reads the clock).
	decisions      *decisionCache
	modelDecisions *modelCache
}

// New loads the policy opts names, compiles it and prepares DecisionQuery.
// It fails, naming the directory or file, when there is no policy, a file
// does not parse or compile, a policy calls a disabled built-in, or no rule
// defines the entry point.
func New(ctx context.Context, opts Options) (*Engine, error) {
	src, err := load(opts, false)
	if err != nil {
		return nil, err
	}
	if !definesDecision(src.modules) {
		return nil, fmt.Errorf("load policies from %s: no rule defines %s", src.name, DecisionQuery)
	}
	options := []func(*rego.Rego){
		rego.Query(DecisionQuery),
		rego.Store(inmem.NewFromObject(src.data)),
		rego.StrictBuiltinErrors(true),
		rego.UnsafeBuiltins(unsafeBuiltins),
		rego.SetRegoVersion(ast.RegoV1),
	}
	for _, module := range src.modules {
		options = append(options, rego.ParsedModule(module))
	}
	query, err := rego.New(options...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile policies from %s: %v", src.name, err)
	}
	options[0] = rego.Query(ModelQuery)
	models, err := rego.New(options...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile policies from %s: %v", src.name, err)
	}
	e := &Engine{query: query, models: models, revision: src.revision}
	if cacheable(src.modules) {
		e.decisions, e.modelDecisions = newDecisionCache(), newModelCache()
	}
	return e, nil
}

// definesDecision reports whether some module has a rule for the entry point.
func definesDecision(modules map[string]*ast.Module) bool {
	pkg := ast.MustParseRef("data.warden.authz")
	for _, m := range modules {
		if !m.Package.Path.Equal(pkg) {
			continue
		}
		for _, r := range m.Rules {
			if r.Head.Ref()[0].Equal(ast.VarTerm("decision")) {
				return true
			}
		}
	}
	return false
}

// Revision identifies the loaded policy: "sha256:" and 16 hex digits of a
// hash over every policy module and data file (paths and contents; tests
// excluded). The same files give the same revision wherever they live; any
// edit changes it.
func (e *Engine) Revision() string {
	if e == nil {
		return ""
	}
	return e.revision
}

// Decide evaluates the policy for one tool call. The decision carries the
// policy revision, a valid risk, a quorum of at least 1 and non-zero
// obligations. On any failure (evaluation error, undefined or invalid
// decision, cancelled context, nil Engine) it returns a deny decision and
// an error wrapping ErrEvaluation or ErrInvalidDecision, so callers fail
// closed whether or not they look at the error.
func (e *Engine) Decide(ctx context.Context, in warden.PolicyInput) (warden.Decision, error) {
	d, err := e.decide(ctx, in)
	if err != nil {
		err = fmt.Errorf("decide %s: %w", in.Tool.Name, err)
		return e.denial(err), err
	}
	return d, nil
}

func (e *Engine) decide(ctx context.Context, in warden.PolicyInput) (warden.Decision, error) {
	if e == nil {
		return warden.Decision{}, fmt.Errorf("%w: no policy engine", ErrEvaluation)
	}
	if err := ctx.Err(); err != nil {
		return warden.Decision{}, fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	if len(in.Args) == 0 {
		in.Args = nil // no arguments: null, not an encoding error
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return warden.Decision{}, fmt.Errorf("%w: encode input: %w", ErrEvaluation, err)
	}
	key := sha256.Sum256(raw)
	if e.decisions != nil {
		if d, ok := e.decisions.get(key); ok {
			return d, nil
		}
	}
	input, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		return warden.Decision{}, fmt.Errorf("%w: encode input: %v", ErrEvaluation, err)
	}
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return warden.Decision{}, fmt.Errorf("%w: %w", ErrEvaluation, ctxErr)
		}
		return warden.Decision{}, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	switch {
	case len(rs) == 0 || len(rs[0].Expressions) == 0:
		return warden.Decision{}, fmt.Errorf("%w: %s is undefined for this call", ErrInvalidDecision, DecisionQuery)
	case len(rs) > 1:
		return warden.Decision{}, fmt.Errorf("%w: %s has %d results, want one", ErrInvalidDecision, DecisionQuery, len(rs))
	}
	d, err := decode(rs[0].Expressions[0].Value)
	if err != nil {
		return warden.Decision{}, fmt.Errorf("%w: %w", ErrInvalidDecision, err)
	}
	d.PolicyRevision = e.revision
	if e.decisions != nil {
		e.decisions.put(key, d)
	}
	return d, nil
}

// decode turns the policy's value into a Decision and checks it. Unknown
// fields are refused: a misspelt "require_aproval" must not pass as no
// approval needed.
func decode(value any) (warden.Decision, error) {
	raw, err := json.Marshal(value)
	if err != nil {
		return warden.Decision{}, fmt.Errorf("encode %s: %w", DecisionQuery, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var d warden.Decision
	if err := dec.Decode(&d); err != nil {
		return warden.Decision{}, fmt.Errorf("%s is not a decision object: %w", DecisionQuery, err)
	}
	if err := normalize(&d); err != nil {
		return warden.Decision{}, err
	}
	return d, nil
}

// normalize fills the defaults a policy may leave out (quorum, obligations,
// a reason) and reports every field that is out of range.
func normalize(d *warden.Decision) error {
	var errs []error
	if !d.Risk.Valid() {
		errs = append(errs, fmt.Errorf("risk %q is not low, medium, high or critical", d.Risk))
	}
	switch {
	case d.Quorum < 0:
		errs = append(errs, fmt.Errorf("quorum %d is negative", d.Quorum))
	case d.Quorum == 0:
		d.Quorum = 1
	}
	switch {
	case d.Obligations.TimeoutSeconds < 0:
		errs = append(errs, fmt.Errorf("obligations.timeout_seconds %d is negative", d.Obligations.TimeoutSeconds))
	case d.Obligations.TimeoutSeconds == 0:
		d.Obligations.TimeoutSeconds = DefaultTimeoutSeconds
	}
	switch {
	case d.Obligations.MaxOutputBytes < 0:
		errs = append(errs, fmt.Errorf("obligations.max_output_bytes %d is negative", d.Obligations.MaxOutputBytes))
	case d.Obligations.MaxOutputBytes == 0:
		d.Obligations.MaxOutputBytes = DefaultMaxOutputBytes
	}
	// Empty and absent lists mean the same; keep one form.
	if len(d.Approvers.Users) == 0 {
		d.Approvers.Users = nil
	}
	if len(d.Approvers.Groups) == 0 {
		d.Approvers.Groups = nil
	}
	if len(d.Approvers.Keys) == 0 {
		d.Approvers.Keys = nil
	}
	if len(d.Obligations.RedactArgs) == 0 {
		d.Obligations.RedactArgs = nil
	}
	if d.Obligations.ApprovalTimeoutSeconds < 0 || d.Obligations.EscalateAfterSeconds < 0 {
		errs = append(errs, errors.New("obligations.approval_timeout_seconds and escalate_after_seconds must not be negative"))
	}
	if len(d.Reasons) == 0 {
		d.Reasons = []string{"the policy gave no reason for this " + d.Verdict() + " decision"}
	}
	return errors.Join(errs...)
}

// denial is the decision Decide returns with an error: deny, critical.
func (e *Engine) denial(err error) warden.Decision {
	return warden.Decision{
		Allow:   false,
		Reasons: []string{"denied because the policy could not decide (fail closed): " + err.Error()},
		Risk:    warden.RiskCritical,
		Quorum:  1,
		Obligations: warden.Obligations{
			TimeoutSeconds: DefaultTimeoutSeconds,
			MaxOutputBytes: DefaultMaxOutputBytes,
		},
		PolicyRevision: e.Revision(),
	}
}
