package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runExportTamper is the export half of the tamper suite: a signed
// export, changed after the fact in each way the issue lists (and more),
// must fail VerifyFileWith with a break naming the manifest.
func runExportTamper(t *testing.T, b backend) {
	s, _ := b.fresh(t)
	priv, pub, err := GenerateSealKey("export-key", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	signer := signerFromPEM(t, priv)
	key := publicFromFile(t, pub)
	// The sealer and the exporter share the key here; they need not.
	require.NoError(t, SetSealSigner(s, signer))
	tamperFixture(t, s)
	var buf bytes.Buffer
	_, err = Export(t.Context(), s, &buf, ExportOptions{Signer: signer})
	require.NoError(t, err)
	export := buf.String()
	opts := FileOptions{PublicKeys: []PublicKey{key}, RequireSigned: true}

	report, err := VerifyFileWith(strings.NewReader(export), opts)
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.Equal(t, "signed", report.Manifest)

	lines := strings.SplitAfter(strings.TrimSuffix(export, "\n"), "\n")
	keep := func(drop func(i int, l string) bool) string {
		var out strings.Builder
		for i, l := range lines {
			if !drop(i, l) {
				out.WriteString(l)
			}
		}
		return out.String()
	}
	last := len(lines) - 1
	sealLines := func(l string) bool { return strings.Contains(l, `"seal_index"`) }
	lastSeal := 0
	for i, l := range lines {
		if sealLines(l) {
			lastSeal = i
		}
	}
	other, _, err := GenerateSealKey("other-key", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	resign := func(text string, k *SealSigner) string {
		ls := strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n")
		var m ExportManifest
		require.NoError(t, json.Unmarshal([]byte(ls[len(ls)-1]), &m))
		if k == nil {
			m.KeyID, m.Signature = "", ""
		} else {
			require.NoError(t, k.signManifest(&m))
		}
		return strings.Join(ls[:len(ls)-1], "") + encodeManifest(t, m)
	}
	for _, tc := range []struct {
		name    string
		file    string
		opts    FileOptions
		problem string
	}{
		{"drop a run and mark the export incomplete", strings.Replace(keep(func(_ int, l string) bool { return strings.Contains(l, `"workflow_id":"wf-b"`) }),
			`"complete":true`, `"complete":false`, 1), opts, "do not match its digest"},
		{"drop the header", keep(func(i int, _ string) bool { return i == 0 }), opts, "do not match its digest"},
		{"drop the seal lines", keep(func(_ int, l string) bool { return sealLines(l) }), opts, "do not match its digest"},
		{"drop the last seal and the rows after the one before", keep(func(i int, l string) bool {
			return i == lastSeal || strings.Contains(l, `"event_id":"a-5"`) || strings.Contains(l, `"event_id":"a-6"`)
		}), opts, "do not match its digest"},
		{"drop a tenant", keep(func(_ int, l string) bool { return strings.Contains(l, `"tenant":"globex"`) }), opts, "do not match its digest"},
		{"drop the manifest", keep(func(i int, _ string) bool { return i == last }), opts, "the file has none"},
		{"append a line after the manifest", export + lines[1], opts, "follow the manifest"},
		{"strip the manifest's signature", resign(export, nil), opts, "not signed"},
		{"re-sign the manifest with another key", resign(export, signerFromPEM(t, other)), opts, `signed with key "other-key"`},
		{"edit the manifest's counts", strings.Replace(export, `"events":11,`, `"events":8,`, 1), opts, "signature does not verify"},
		{"drop a run and fix the counts, keeping the signature", strings.Replace(
			keep(func(_ int, l string) bool { return strings.Contains(l, `"workflow_id":"wf-b"`) }), `"events":11,`, `"events":8,`, 1), opts, "do not match its digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NotEqual(t, export, tc.file, "the tamper changed nothing")
			report, err := VerifyFileWith(strings.NewReader(tc.file), tc.opts)
			require.NoError(t, err)
			require.False(t, report.OK(), "tampering went unnoticed")
			var found bool
			for _, br := range report.Breaks {
				found = found || (strings.HasPrefix(br.Problem, "export manifest: ") && strings.Contains(br.Problem, tc.problem))
			}
			require.True(t, found, "no manifest break containing %q in %v", tc.problem, report.Breaks)
		})
	}

	t.Run("an unsigned manifest verifies unless signatures are required", func(t *testing.T) {
		var buf bytes.Buffer
		_, err := Export(t.Context(), s, &buf, ExportOptions{})
		require.NoError(t, err)
		report, err := VerifyFileWith(bytes.NewReader(buf.Bytes()), FileOptions{})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.Equal(t, "unsigned", report.Manifest)
		report, err = VerifyFileWith(bytes.NewReader(buf.Bytes()), opts)
		require.NoError(t, err)
		require.False(t, report.OK())
	})
}

func signerFromPEM(t *testing.T, pem []byte) *SealSigner {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, pem, 0o600))
	k, err := LoadSealSigner(path)
	require.NoError(t, err)
	return k
}

func publicFromFile(t *testing.T, pub []byte) PublicKey {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pub")
	require.NoError(t, os.WriteFile(path, pub, 0o644))
	k, err := ParsePublicKey(path)
	require.NoError(t, err)
	return k
}

func encodeManifest(t *testing.T, m ExportManifest) string {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b) + "\n"
}

func TestPostgresExportTamper(t *testing.T) {
	t.Parallel()
	runExportTamper(t, postgresBackend)
}

func TestSQLiteExportTamper(t *testing.T) {
	t.Parallel()
	runExportTamper(t, sqliteBackend)
}
