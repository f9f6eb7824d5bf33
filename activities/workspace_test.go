package activities_test

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/activities"
)

// TestWorkspaceDirIsInjective: names that fold to the same characters
// (the pairs that once shared a folder), and thousands of generated ones
// from an alphabet made to fold, never share a workspace, and every
// workspace stays below the root.
func TestWorkspaceDirIsInjective(t *testing.T) {
	t.Parallel()
	root := "/var/lib/warden/workspaces"
	pairs := [][2]activities.RunRef{
		{{Tenant: "acme corp", WorkflowID: "wf"}, {Tenant: "acme_corp", WorkflowID: "wf"}},
		{{Tenant: "acme/corp", WorkflowID: "wf"}, {Tenant: "acme:corp", WorkflowID: "wf"}},
		{{Tenant: "..", WorkflowID: "wf"}, {Tenant: "_", WorkflowID: "wf"}},
		{{Tenant: "acme", WorkflowID: ".."}, {Tenant: "acme", WorkflowID: "."}},
		{{Tenant: "a", WorkflowID: "b/c"}, {Tenant: "a/b", WorkflowID: "c"}},
		{{Tenant: "acme", WorkflowID: "wf", ChainID: "run-1"}, {Tenant: "acme", WorkflowID: "wf", ChainID: "run-2"}},
		{{Tenant: strings.Repeat("x", 40) + "1", WorkflowID: "wf"}, {Tenant: strings.Repeat("x", 40) + "2", WorkflowID: "wf"}},
	}
	for _, p := range pairs {
		require.NotEqual(t, activities.WorkspaceDir(root, p[0]), activities.WorkspaceDir(root, p[1]), "%+v and %+v share a workspace", p[0], p[1])
	}

	alphabet := []string{"a", "_", " ", "/", ":", ".", "..", "é", "\x00"}
	word := func(r *rand.Rand) string {
		var b strings.Builder
		for range r.IntN(4) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]activities.RunRef{}
	for range 20000 {
		ref := activities.RunRef{Tenant: word(r), WorkflowID: word(r), ChainID: word(r)}
		dir := activities.WorkspaceDir(root, ref)
		rel, err := filepath.Rel(root, dir)
		require.NoError(t, err)
		require.False(t, rel == "." || strings.HasPrefix(rel, ".."), "%+v escapes the root: %s", ref, dir)
		require.Len(t, strings.Split(rel, string(filepath.Separator)), 2, "%+v: %s", ref, rel)
		if other, ok := seen[dir]; ok && other != ref {
			t.Fatalf("%+v and %+v share %s", other, ref, dir)
		}
		seen[dir] = ref
	}
}

// TestWorkspaceDirFollowsTheChain: a continue-as-new segment (new run ID,
// same chain) keeps the workspace; an input recorded before chains were
// known falls back to the run ID.
func TestWorkspaceDirFollowsTheChain(t *testing.T) {
	t.Parallel()
	first := activities.RunRef{Tenant: "acme", WorkflowID: "wf", RunID: "r1", ChainID: "r1"}
	next := activities.RunRef{Tenant: "acme", WorkflowID: "wf", RunID: "r2", ChainID: "r1"}
	require.Equal(t, activities.WorkspaceDir("/w", first), activities.WorkspaceDir("/w", next))
	old := activities.RunRef{Tenant: "acme", WorkflowID: "wf", RunID: "r1"}
	require.Equal(t, activities.WorkspaceDir("/w", first), activities.WorkspaceDir("/w", old))
	require.True(t, strings.HasPrefix(activities.WorkspaceDir("/w", first), "/w/acme-"))
}
