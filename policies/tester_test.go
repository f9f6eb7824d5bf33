package policies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRegoTests runs every *_test.rego of the embedded bundle.
func TestRegoTests(t *testing.T) {
	t.Parallel()
	results, err := RunTests(t.Context(), Options{})
	require.NoError(t, err)
	require.Greater(t, len(results), 10, "the bundle must carry its Rego tests")

	var failed []string
	for _, r := range results {
		if !r.Passed && !r.Skipped {
			failed = append(failed, r.Name+": "+r.Failure+" "+r.Output)
		}
	}
	require.Empty(t, failed, "failing Rego tests:\n%s", strings.Join(failed, "\n"))
	t.Logf("%d Rego tests passed", len(results))

	// Every policy file has its tests.
	files := map[string]bool{}
	for _, r := range results {
		files[filepath.Base(r.File)] = true
	}
	for _, f := range []string{"authz_test.rego", "shell_test.rego", "refund_test.rego"} {
		require.True(t, files[f], "no results from %s", f)
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", "package warden.authz\n\nanswer := 42\n")
	writeFile(t, dir, "p_test.rego", `package warden.authz_test

import data.warden.authz

test_passes if authz.answer == 42

test_fails if {
	x := authz.answer
	x == 41
}

test_errors if to_number("not a number") == 1

test_cases[name] if {
	some name, want in {"right": 42, "wrong": 7}
	authz.answer == want
}

todo_test_later if false
`)
	results, err := RunTests(t.Context(), Options{Dir: dir})
	require.NoError(t, err)

	byName := map[string]TestResult{}
	for _, r := range results {
		byName[r.Name] = r
	}
	require.Len(t, byName, 6, "%+v", results)

	require.True(t, byName["data.warden.authz_test.test_passes"].Passed)

	fails := byName["data.warden.authz_test.test_fails"]
	require.False(t, fails.Passed)
	require.Contains(t, fails.Failure, "x == 41")
	require.Equal(t, filepath.Join(dir, "p_test.rego"), fails.File)

	errs := byName["data.warden.authz_test.test_errors"]
	require.False(t, errs.Passed)
	require.Contains(t, errs.Failure, "to_number")

	require.True(t, byName["data.warden.authz_test.test_cases[right]"].Passed)
	require.False(t, byName["data.warden.authz_test.test_cases[wrong]"].Passed)

	require.True(t, byName["data.warden.authz_test.todo_test_later"].Skipped)
}

func TestRunTestsBrokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", "package warden.authz\n\ndecision := {}\n")
	writeFile(t, dir, "p_test.rego", "package warden.authz_test\n\ntest_x if {\n")
	_, err := RunTests(t.Context(), Options{Dir: dir})
	require.ErrorContains(t, err, filepath.Join(dir, "p_test.rego"))
}

func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}
