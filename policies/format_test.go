package policies

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/format"
	"github.com/stretchr/testify/require"
)

// TestBundleIsFormatted keeps the embedded Rego in `opa fmt` style.
func TestBundleIsFormatted(t *testing.T) {
	t.Parallel()
	err := fs.WalkDir(bundle, "bundle", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() || !strings.HasSuffix(p, ".rego") {
			return nil
		}
		src, err := fs.ReadFile(bundle, p)
		require.NoError(t, err)
		formatted, err := format.Source(p, src)
		require.NoError(t, err)
		require.Equal(t, string(formatted), string(src), "%s is not formatted as opa fmt would", p)
		return nil
	})
	require.NoError(t, err)
}
