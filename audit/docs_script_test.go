package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// TestDocsVerifyScript runs the Python checker printed in docs/audit.md
// ("Verify with your own script") on an export with rows of both hash
// versions: it must say OK, and must name the row after an edit.
func TestDocsVerifyScript(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	doc, err := os.ReadFile("../docs/audit.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(doc), "### Verify with your own script")
	require.True(t, ok, "docs/audit.md lost its script section")
	_, rest, ok = strings.Cut(rest, "```python\n")
	require.True(t, ok)
	script, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	dir := t.TempDir()
	scriptPath := filepath.Join(dir, "verify.py")
	require.NoError(t, os.WriteFile(scriptPath, []byte(script), 0o644))

	b := sqliteBackend
	s, loc := b.fresh(t)
	// A version-1 row, as an older Warden wrote it, then version-2 rows.
	insertV1Row(t, b, loc, "wf-a")
	for i := range 4 {
		require.NoError(t, s.Append(t.Context(), warden.AuditEvent{
			ID: fmt.Sprint("a-", i), Type: warden.EventToolExecuted, Tenant: "acme", WorkflowID: "wf-" + string(rune('a'+i%2)),
			Actor: "sandbox", Tool: "issue_refund", Args: json.RawMessage(fmt.Sprintf(`{"amount": %d.50, "note": "<ü>"}`, 100+i)),
			Reasons: []string{"high risk"}, Step: i, InputTokens: 12, OccurredAt: time.Date(2026, 5, 4, 10, 0, i+1, 123456789, time.UTC),
		}))
	}
	var buf bytes.Buffer
	n, err := Export(t.Context(), s, &buf, ExportOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 5, n)

	run := func(export []byte) (string, error) {
		path := filepath.Join(dir, "export.jsonl")
		require.NoError(t, os.WriteFile(path, export, 0o644))
		out, err := exec.Command(python, scriptPath, path).CombinedOutput()
		return string(out), err
	}
	out, err := run(buf.Bytes())
	require.NoError(t, err, out)
	require.Equal(t, "OK\n", out)

	// The edits hit version-2 rows (a-2, a-3); the version-1 row's
	// recorded_at is not hashed, as the docs say.
	for name, edit := range map[string][2]string{
		"amount":      {`"amount":102.5`, `"amount":1002.5`},
		"recorded_at": {`"recorded_at":"20`, `"recorded_at":"19`},
	} {
		at := bytes.Index(buf.Bytes(), []byte(`"event_id":"a-3"`))
		require.Positive(t, at)
		start := bytes.LastIndexByte(buf.Bytes()[:at], '\n') + 1
		if name == "amount" {
			start = 0
		}
		edited := append(bytes.Clone(buf.Bytes()[:start]), bytes.Replace(buf.Bytes()[start:], []byte(edit[0]), []byte(edit[1]), 1)...)
		require.NotEqual(t, buf.Bytes(), edited, name)
		out, err = run(edited)
		require.Error(t, err, "%s: %s", name, out)
		require.Contains(t, out, "content does not match its hash", name)
	}
}
