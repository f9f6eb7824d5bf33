package workflows_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/tools"
)

// TestWorkflowsNameNoToolArguments: the workflow code knows no tool's
// argument shapes; how a call reads to people is the tool's own summary
// template (warden.ToolSpec.Summary), decided by Authorize. No string
// literal in the package's code is a built-in tool's name or the name of
// one of its arguments.
func TestWorkflowsNameNoToolArguments(t *testing.T) {
	t.Parallel()
	reg, err := tools.NewRegistry(tools.Options{})
	require.NoError(t, err)
	var names []string
	for _, spec := range reg.Specs(nil) {
		names = append(names, spec.Name)
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(spec.Schema, &schema), spec.Name)
		require.NotEmpty(t, schema.Properties, spec.Name)
		for p := range schema.Properties {
			names = append(names, p)
		}
	}
	require.Contains(t, names, "amount_cents", "the check covers issue_refund's arguments")

	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	var checked int
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		require.NoError(t, err)
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			require.False(t, slices.Contains(names, s), "%s names the tool or tool argument %q", fset.Position(lit.Pos()), s)
			return true
		})
	}
	require.Contains(t, files, "details.go")
	require.Greater(t, checked, 2)
}
