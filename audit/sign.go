package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// SealSigner signs seals: the worker holds it (never the database), so a
// seal written with database rights alone carries no valid signature.
type SealSigner struct {
	// KeyID names the key; verify looks the public key up by it.
	KeyID string
	Key   ed25519.PrivateKey
}

// PublicKey is a seal verification key with its validity period (zero
// bounds are open): a seal must be sealed within [NotBefore, NotAfter) of
// the key that signed it, so a retired key cannot sign new seals that
// verify.
type PublicKey struct {
	KeyID     string            `json:"key_id"`
	Key       ed25519.PublicKey `json:"-"`
	NotBefore time.Time         `json:"not_before,omitzero"`
	NotAfter  time.Time         `json:"not_after,omitzero"`
}

// publicKeyFile is PublicKey's file form (`warden audit keygen` writes it).
type publicKeyFile struct {
	KeyID     string    `json:"key_id"`
	PublicKey string    `json:"public_key"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
}

// sealSigningDomain separates seal signatures from every other signature
// made with Ed25519 keys.
const sealSigningDomain = "warden-audit-seal-v1"

// SealSigningMessage is what a seal's signature signs: the domain, the key
// ID and the seal's hash (SealHash, which covers the previous seal's hash,
// so a signature vouches for the whole seal chain before it), separated by
// newlines.
func SealSigningMessage(keyID, sealHash string) []byte {
	return []byte(sealSigningDomain + "\n" + keyID + "\n" + sealHash)
}

// Sign sets s's KeyID and Signature.
func (k *SealSigner) Sign(s *Seal) {
	s.KeyID = k.KeyID
	s.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k.Key, SealSigningMessage(k.KeyID, s.Hash)))
}

// Public returns the signer's public key, valid from now.
func (k *SealSigner) Public() PublicKey {
	return PublicKey{KeyID: k.KeyID, Key: k.Key.Public().(ed25519.PublicKey)}
}

// checkSignature reports what is wrong with s's signature given keys, or
// "" when it verifies.
func checkSignature(s *Seal, keys map[string]PublicKey) string {
	k, ok := keys[s.KeyID]
	if !ok {
		return fmt.Sprintf("signed with key %q, which is not among the public keys given (--pubkey): the key does not match", s.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(k.Key, SealSigningMessage(s.KeyID, s.Hash), sig) {
		return fmt.Sprintf("signature does not verify with key %q: the seal was forged or changed", s.KeyID)
	}
	if !k.NotBefore.IsZero() && s.SealedAt.Before(k.NotBefore) || !k.NotAfter.IsZero() && !s.SealedAt.Before(k.NotAfter) {
		return fmt.Sprintf("sealed at %s, outside the validity of key %q (%s to %s): signed with a retired key",
			s.SealedAt.Format(time.RFC3339), s.KeyID, fmtBound(k.NotBefore), fmtBound(k.NotAfter))
	}
	return ""
}

func fmtBound(t time.Time) string {
	if t.IsZero() {
		return "open"
	}
	return t.UTC().Format(time.RFC3339)
}

// keyIDHeader is the PEM header naming a private key's ID.
const keyIDHeader = "Key-Id"

// GenerateSealKey creates a seal key pair: the private key as PEM
// (PKCS#8, with a Key-Id header) and the public key file's JSON, valid
// from now.
func GenerateSealKey(keyID string, now time.Time) (private, public []byte, err error) {
	if err := validKeyID(keyID); err != nil {
		return nil, nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	private = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{keyIDHeader: keyID}, Bytes: der})
	public, err = json.MarshalIndent(publicKeyFile{KeyID: keyID, PublicKey: base64.StdEncoding.EncodeToString(pub),
		NotBefore: now.UTC().Truncate(time.Second)}, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return private, append(public, '\n'), nil
}

func validKeyID(id string) error {
	if id == "" || strings.ContainsAny(id, "\n\r=, ") || !storableText(id) {
		return fmt.Errorf("key ID %q: give a non-empty name without spaces, commas, '=' or newlines", id)
	}
	return nil
}

// LoadSealSigner reads a seal signing key written by GenerateSealKey (PEM
// PKCS#8 with a Key-Id header).
func LoadSealSigner(path string) (*SealSigner, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seal key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("seal key %s is not PEM (create one with warden audit keygen)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("seal key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("seal key %s is not an Ed25519 key", path)
	}
	id := block.Headers[keyIDHeader]
	if err := validKeyID(id); err != nil {
		return nil, fmt.Errorf("seal key %s has no usable %s header: %w", path, keyIDHeader, err)
	}
	return &SealSigner{KeyID: id, Key: priv}, nil
}

// ParsePublicKey reads a public key given as KEYID=BASE64 or as the path
// of a public key file (JSON: key_id, public_key, optional not_before and
// not_after in RFC 3339).
func ParsePublicKey(spec string) (PublicKey, error) {
	var f publicKeyFile
	if id, b64, ok := strings.Cut(spec, "="); ok && !strings.ContainsAny(id, "/\\") {
		f = publicKeyFile{KeyID: id, PublicKey: b64}
	} else {
		b, err := os.ReadFile(spec)
		if err != nil {
			return PublicKey{}, fmt.Errorf("public key %s: %w", spec, err)
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return PublicKey{}, fmt.Errorf("public key %s: %w", spec, err)
		}
	}
	if err := validKeyID(f.KeyID); err != nil {
		return PublicKey{}, fmt.Errorf("public key %s: %w", spec, err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(f.PublicKey))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("public key %s: public_key must be the base64 of a 32-byte Ed25519 key", spec)
	}
	return PublicKey{KeyID: f.KeyID, Key: ed25519.PublicKey(raw), NotBefore: f.NotBefore, NotAfter: f.NotAfter}, nil
}

// keyring indexes keys by ID; two keys with one ID are an error.
func keyring(keys []PublicKey) (map[string]PublicKey, error) {
	out := make(map[string]PublicKey, len(keys))
	for _, k := range keys {
		if _, dup := out[k.KeyID]; dup {
			return nil, fmt.Errorf("two public keys share the key ID %q", k.KeyID)
		}
		out[k.KeyID] = k
	}
	return out, nil
}

// SealSigning is implemented by stores that sign their seals.
type SealSigning interface {
	// SetSealSigner makes every later seal (checkpoints and retention
	// seals) carry a signature by signer; nil stops signing.
	SetSealSigner(signer *SealSigner)
}

// SetSealSigner makes s sign its seals with signer. It fails for a store
// that cannot sign.
func SetSealSigner(s Store, signer *SealSigner) error {
	ss, ok := s.(SealSigning)
	if !ok {
		return fmt.Errorf("audit store %T cannot sign seals", s)
	}
	ss.SetSealSigner(signer)
	return nil
}

// signerSlot holds a store's signer.
type signerSlot struct{ p atomic.Pointer[SealSigner] }

// SetSealSigner implements SealSigning.
func (s *signerSlot) SetSealSigner(signer *SealSigner) { s.p.Store(signer) }

// sign signs seal with the store's signer, if any.
func (s *signerSlot) sign(seal Seal) Seal {
	if k := s.p.Load(); k != nil {
		k.Sign(&seal)
	}
	return seal
}

// SetSealSigner implements SealSigning by passing signer to the wrapped
// store.
func (s redacting) SetSealSigner(signer *SealSigner) {
	if ss, ok := s.Store.(SealSigning); ok {
		ss.SetSealSigner(signer)
	}
}
