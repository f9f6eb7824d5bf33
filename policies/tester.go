package policies

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// TestResult is the outcome of one Rego test: a rule named test_* in a
// *_test.rego file, or one case of a data-driven test (test_x[name]).
type TestResult struct {
	// Name is the test's full name, such as
	// data.warden.shell_test.test_rm_root, with the case appended for a
	// data-driven test: data.warden.shell_test.test_safe_commands[ls -la].
	Name string
	// File and Row locate the test rule.
	File string
	Row  int
	// Passed is true when the test held. Skipped tests (named todo_*)
	// neither pass nor fail.
	Passed  bool
	Skipped bool
	// Failure says why a test did not pass: the error it raised, or the
	// expression that was false or undefined where it can be found.
	Failure string
	// Output is what the test printed with print().
	Output   string
	Duration time.Duration
}

// RunTests runs every Rego test of the policy opts names with OPA's tester,
// against the same data and with the same built-ins disabled as Engine.
// Results come sorted by file, row and name. An error means the tests could
// not run (a file does not parse or compile); failing tests are results.
func RunTests(ctx context.Context, opts Options) ([]TestResult, error) {
	src, err := load(opts, true)
	if err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler().
		WithCapabilities(safeCapabilities()).
		WithEnablePrintStatements(true).
		WithDefaultRegoVersion(ast.RegoV1)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(inmem.NewFromObject(src.data)).
		SetModules(src.modules).
		RaiseBuiltinErrors(true).
		EnableTracing(true).
		CapturePrintOutput(true)
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("run policy tests from %s: %v", src.name, err)
	}
	var results []TestResult
	for r := range ch {
		results = append(results, testResults(r)...)
	}
	if err := ctx.Err(); err != nil {
		return results, fmt.Errorf("run policy tests from %s: %w", src.name, err)
	}
	slices.SortFunc(results, func(a, b TestResult) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Row, b.Row), cmp.Compare(a.Name, b.Name))
	})
	return results, nil
}

// safeCapabilities are this OPA version's capabilities without the unsafe
// built-ins, so a test cannot call what a decision may not.
func safeCapabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		_, unsafe := unsafeBuiltins[b.Name]
		return unsafe
	})
	return caps
}

// testResults converts one tester result; a data-driven test gives one
// result per case.
func testResults(r *tester.Result) []TestResult {
	base := TestResult{
		Name:     r.Package + "." + r.Name,
		Passed:   r.Pass(),
		Skipped:  r.Skip,
		Output:   string(r.Output),
		Duration: r.Duration,
	}
	if r.Location != nil {
		base.File, base.Row = r.Location.File, r.Location.Row
	}
	switch {
	case r.Error != nil:
		base.Failure = r.Error.Error()
	case r.Fail && len(r.SubResults) == 0:
		base.Failure = failedExpression(r)
	}
	if len(r.SubResults) == 0 || r.Error != nil {
		return []TestResult{base}
	}
	var out []TestResult
	for names, sub := range r.SubResults.Iter {
		if len(sub.SubResults) > 0 {
			continue // only leaves are cases
		}
		c := base
		for _, n := range names {
			c.Name += fmt.Sprintf("[%s]", n)
		}
		c.Passed = !sub.Fail
		c.Failure = ""
		if sub.Fail {
			c.Failure = "this case is false or undefined"
		}
		out = append(out, c)
	}
	return out
}

// failedExpression names the last expression of the test's own file that
// evaluated to false, which is usually the assertion that failed.
func failedExpression(r *tester.Result) string {
	const undefined = "the test is false or undefined"
	if r.Location == nil {
		return undefined
	}
	for _, e := range slices.Backward(r.Trace) {
		if e.Op != topdown.FailOp || e.Location == nil || e.Location.File != r.Location.File {
			continue
		}
		if _, ok := e.Node.(*ast.Expr); !ok {
			continue
		}
		text := strings.Join(strings.Fields(string(e.Location.Text)), " ")
		return fmt.Sprintf("%s (%s:%d: %s)", undefined, e.Location.File, e.Location.Row, text)
	}
	return undefined
}
