package workflows_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWorkflowsLinkNoSideEffects proves the workflows package's dependency
// direction: the workflows package (and every Warden package it links)
// reaches no database, policy engine, sandbox, model client or audit store,
// and no Warden package it links imports os/exec or net/http itself. (The
// Temporal SDK links net/http through gRPC; that is the SDK's business.)
func TestWorkflowsLinkNoSideEffects(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \",\"}}", ".").CombinedOutput()
	require.NoError(t, err, string(out))

	forbidden := []string{
		"github.com/jackc/pgx",
		"github.com/open-policy-agent/opa",
		"github.com/sashabaranov/go-openai",
		"modernc.org/sqlite",
		"github.com/wardenhq/warden/sandbox",
		"github.com/wardenhq/warden/audit",
		"github.com/wardenhq/warden/policies",
		"github.com/wardenhq/warden/tools",
		"github.com/wardenhq/warden/llm",
		"github.com/wardenhq/warden/worker",
	}
	var linked int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		linked++
		for _, f := range forbidden {
			require.False(t, pkg == f || strings.HasPrefix(pkg, f+"/"), "workflows links %s", pkg)
		}
		if strings.HasPrefix(pkg, "github.com/wardenhq/warden") {
			for _, imp := range strings.Split(imports, ",") {
				require.NotContains(t, []string{"os/exec", "net/http", "math/rand", "math/rand/v2"}, imp, "%s imports %s", pkg, imp)
			}
		}
	}
	require.Greater(t, linked, 50, "go list returned too little to prove anything")
}
