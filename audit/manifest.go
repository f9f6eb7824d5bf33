package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"time"
)

// ExportManifest is the last line of an export: what the file holds and a
// digest of every line before it, signed by the exporter's key when it
// has one. Verify then knows nothing was dropped, added or changed after
// export: a removed run, header or seal line changes the digest and the
// counts, and without the key the manifest cannot be rewritten to match.
type ExportManifest struct {
	// Version is always 1; its key marks the line as the manifest.
	Version    int       `json:"warden_manifest"`
	Tenant     string    `json:"tenant,omitempty"`
	Since      string    `json:"since,omitempty"`
	Until      string    `json:"until,omitempty"`
	Complete   bool      `json:"complete"`
	ExportedAt time.Time `json:"exported_at"`
	Events     int64     `json:"events"`
	Chains     int       `json:"chains"`
	Seals      int       `json:"seals"`
	// FirstSeq and LastSeq bound the exported events' seqs (0 when none).
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// LastSeal is the hash of the last seal line (empty when none).
	LastSeal string `json:"last_seal"`
	// Digest is the hex SHA-256 of every line before the manifest, each
	// with its trailing newline, in file order.
	Digest string `json:"digest"`
	// KeyID and Signature sign ManifestSigningMessage; empty when the
	// export was not signed.
	KeyID     string `json:"key_id,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// manifestSigningDomain separates manifest signatures from seal ones.
const manifestSigningDomain = "warden-audit-export-v1"

// ManifestSigningMessage is what a manifest's signature signs: the domain,
// the key ID and the canonical JSON of the manifest without its signature.
func ManifestSigningMessage(m ExportManifest) ([]byte, error) {
	m.Signature = ""
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	c, err := CanonicalJSON(raw)
	if err != nil {
		return nil, err
	}
	return append([]byte(manifestSigningDomain+"\n"+m.KeyID+"\n"), c...), nil
}

// sign sets m's KeyID and Signature.
func (k *SealSigner) signManifest(m *ExportManifest) error {
	m.KeyID = k.KeyID
	msg, err := ManifestSigningMessage(*m)
	if err != nil {
		return err
	}
	m.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k.Key, msg))
	return nil
}

// manifestBuilder accumulates the manifest while the export is written.
type manifestBuilder struct {
	m      ExportManifest
	digest hash.Hash
	chains map[chainKey]bool
}

func newManifestBuilder(h ExportHeader) *manifestBuilder {
	return &manifestBuilder{
		m:      ExportManifest{Version: 1, Tenant: h.Tenant, Since: h.Since, Until: h.Until, Complete: h.Complete, ExportedAt: h.ExportedAt},
		digest: sha256.New(), chains: map[chainKey]bool{},
	}
}

// line adds one written line (with its newline) to the digest.
func (b *manifestBuilder) line(raw []byte) { b.digest.Write(raw) }

func (b *manifestBuilder) event(seq int64, k chainKey) {
	if b.m.Events == 0 {
		b.m.FirstSeq = seq
	}
	b.m.Events++
	b.m.LastSeq = seq
	b.chains[k] = true
}

func (b *manifestBuilder) seal(s Seal) {
	b.m.Seals++
	b.m.LastSeal = s.Hash
}

func (b *manifestBuilder) finish(signer *SealSigner) (ExportManifest, error) {
	b.m.Chains = len(b.chains)
	b.m.Digest = hex.EncodeToString(b.digest.Sum(nil))
	if signer != nil {
		if err := signer.signManifest(&b.m); err != nil {
			return ExportManifest{}, fmt.Errorf("sign the manifest: %w", err)
		}
	}
	return b.m, nil
}

// checkManifest compares a file's manifest with what the file holds and
// checks its signature; it returns the problems found.
func checkManifest(got ExportManifest, want ExportManifest, keys map[string]PublicKey, requireSigned bool) []string {
	var problems []string
	if got.Digest != want.Digest {
		problems = append(problems, fmt.Sprintf("the lines before the manifest do not match its digest (%s, the file hashes to %s): a line was removed, added or changed after export",
			short(got.Digest), short(want.Digest)))
	}
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"events", got.Events, want.Events}, {"chains", int64(got.Chains), int64(want.Chains)}, {"seals", int64(got.Seals), int64(want.Seals)},
		{"first seq", got.FirstSeq, want.FirstSeq}, {"last seq", got.LastSeq, want.LastSeq},
	} {
		if c.got != c.want {
			problems = append(problems, fmt.Sprintf("the manifest says %d %s, the file holds %d", c.got, c.what, c.want))
		}
	}
	if got.LastSeal != want.LastSeal {
		problems = append(problems, fmt.Sprintf("the manifest's last seal is %s, the file's is %s", short(got.LastSeal), short(want.LastSeal)))
	}
	if got.Tenant != want.Tenant || got.Since != want.Since || got.Until != want.Until || got.Complete != want.Complete {
		problems = append(problems, "the manifest's scope (tenant, since, until, complete) differs from the export header's")
	}
	switch {
	case got.Signature == "":
		if requireSigned {
			problems = append(problems, "the manifest is not signed (export with --sign-key): the file's completeness is not proven")
		}
	case len(keys) == 0:
	default:
		k, ok := keys[got.KeyID]
		msg, err := ManifestSigningMessage(got)
		sig, derr := base64.StdEncoding.DecodeString(got.Signature)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("the manifest is signed with key %q, which no --pubkey gives", got.KeyID))
		case err != nil || derr != nil || !ed25519.Verify(k.Key, msg, sig):
			problems = append(problems, fmt.Sprintf("the manifest's signature does not verify with key %q: the manifest was changed", got.KeyID))
		}
	}
	return problems
}
