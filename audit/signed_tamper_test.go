package audit

import (
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// signedFixture is tamperFixture's log, sealed by a signing sealer that
// records every seal in an anchor file outside the database.
func signedFixture(t *testing.T, b backend) (Store, string, PublicKey, string) {
	t.Helper()
	s, loc := b.fresh(t)
	_, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	signer := &SealSigner{KeyID: "worker-2026", Key: key}
	require.NoError(t, SetSealSigner(s, signer))
	pub := signer.Public()
	tamperFixture(t, s) // seals once, leaves a-5, a-6 unsealed
	anchorPath := filepath.Join(t.TempDir(), "anchor.jsonl")
	anchor, err := OpenAnchor(anchorPath)
	require.NoError(t, err)
	// The first seal was made before the anchor existed: caught up.
	n, err := anchor.CatchUp(t.Context(), s, &pub)
	require.NoError(t, err)
	require.Positive(t, n)
	require.NoError(t, SealAndAnchor(t.Context(), s, "", anchor, &pub))
	require.NoError(t, anchor.Close())
	return s, loc, pub, anchorPath
}

// verifyAnchored verifies s with the public key and the anchor file.
func verifyAnchored(t *testing.T, s Store, pub PublicKey, anchorPath string, opts VerifyOptions) (VerifyReport, error) {
	t.Helper()
	log, err := ReadAnchor(anchorPath)
	require.NoError(t, err)
	opts.PublicKeys = append(opts.PublicKeys, pub)
	opts.Anchors = []*AnchorLog{log}
	return Verify(t.Context(), s, opts)
}

// runSignedTamper: tampers a holder of database rights can make
// consistent with the unkeyed hash chain, caught by signatures and the
// anchor.
func runSignedTamper(t *testing.T, b backend) {
	t.Run("untouched log verifies, signed and anchored", func(t *testing.T) {
		t.Parallel()
		s, _, pub, anchorPath := signedFixture(t, b)
		report, err := verifyAnchored(t, s, pub, anchorPath, VerifyOptions{RequireSigned: true})
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Breaks)
		require.Positive(t, report.Signed)
		require.Zero(t, report.Unsigned)
		require.Positive(t, report.Anchored)
		require.True(t, report.SignaturesChecked)
	})
	for _, tc := range []struct {
		name    string
		sql     []string
		problem string
		anchor  bool // the break names the anchor file
	}{
		{name: "delete the last seals and the rows only they cover", sql: []string{
			"DELETE FROM audit_events WHERE event_id IN ('a-5', 'a-6')",
			"DELETE FROM audit_seals WHERE seal_index = (SELECT max(seal_index) FROM audit_seals WHERE tenant = 'acme') AND tenant = 'acme'",
		}, problem: "missing from the database", anchor: true},
		{name: "delete a whole tenant, events and seals", sql: []string{
			"DELETE FROM audit_events WHERE tenant = 'globex'",
			"DELETE FROM audit_seals WHERE tenant = 'globex'",
		}, problem: "missing from the database", anchor: true},
		{name: "replace a seal's signature", sql: []string{
			"UPDATE audit_seals SET signature = (SELECT signature FROM audit_seals WHERE tenant = 'globex' LIMIT 1) WHERE tenant = 'acme'",
		}, problem: "signature does not verify"},
		{name: "strip a seal's signature", sql: []string{
			"UPDATE audit_seals SET signature = '', key_id = '' WHERE tenant = 'acme'",
		}, problem: "unsigned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, loc, pub, anchorPath := signedFixture(t, b)
			for _, q := range tc.sql {
				b.superuser(t, loc, q)
			}
			report, err := verifyAnchored(t, s, pub, anchorPath, VerifyOptions{RequireSigned: true})
			require.NoError(t, err)
			require.False(t, report.OK(), "tamper not detected")
			found := false
			for _, br := range report.Breaks {
				if strings.Contains(br.Problem, tc.problem) && (!tc.anchor || br.Anchor == anchorPath && br.Line > 0) {
					found = true
				}
			}
			require.True(t, found, "no break says %q (anchor %v): %v", tc.problem, tc.anchor, report.Breaks)
		})
	}
	t.Run("truncate everything", func(t *testing.T) {
		t.Parallel()
		s, loc, pub, anchorPath := signedFixture(t, b)
		b.superuser(t, loc, "DELETE FROM audit_events")
		b.superuser(t, loc, "DELETE FROM audit_seals")
		report, err := verifyAnchored(t, s, pub, anchorPath, VerifyOptions{})
		if err != nil {
			require.True(t, errors.Is(err, ErrNothingVerified), "%v", err)
			return
		}
		require.False(t, report.OK(), "an emptied log verified against its anchor")
	})
	t.Run("a key that does not match", func(t *testing.T) {
		t.Parallel()
		s, _, _, anchorPath := signedFixture(t, b)
		other, _, err := ed25519.GenerateKey(nil)
		require.NoError(t, err)
		report, err := verifyAnchored(t, s, PublicKey{KeyID: "worker-2026", Key: other}, anchorPath, VerifyOptions{})
		require.NoError(t, err)
		require.False(t, report.OK())
		require.Contains(t, report.Breaks[0].Problem, "does not verify")
	})
	t.Run("a scope with nothing visible is an error, not OK", func(t *testing.T) {
		t.Parallel()
		s, _, _, _ := signedFixture(t, b)
		_, err := Verify(t.Context(), s, VerifyOptions{Tenant: "nobody"})
		require.ErrorIs(t, err, ErrNothingVerified)
	})
}

func TestPostgresSignedTamper(t *testing.T) {
	t.Parallel()
	runSignedTamper(t, postgresBackend)
}

func TestSQLiteSignedTamper(t *testing.T) {
	t.Parallel()
	runSignedTamper(t, sqliteBackend)
}
