package policies

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactionConfig(t *testing.T) {
	t.Parallel()
	_, err := RedactionConfig(Options{})
	require.NoError(t, err, "the embedded bundle loads")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package warden.authz\n\ndecision := {\"allow\": false}\n"), 0o600))
	raw, err := RedactionConfig(Options{Dir: dir})
	require.NoError(t, err)
	require.Nil(t, raw, "no data, no config")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.json"),
		[]byte(`{"warden":{"redaction":{"disable":["phone"],"rules":[{"name":"employee_id","pattern":"EMP-[0-9]{6}"}]}}}`), 0o600))
	raw, err = RedactionConfig(Options{Dir: dir})
	require.NoError(t, err)
	require.JSONEq(t, `{"disable":["phone"],"rules":[{"name":"employee_id","pattern":"EMP-[0-9]{6}"}]}`, string(raw))
}
