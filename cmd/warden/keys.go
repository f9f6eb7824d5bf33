package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newKeygenCmd() *cobra.Command {
	var out, name string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE --as NAME",
		Short: "Create an Ed25519 key for signed approvals and print the policy data entry for its public key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || name == "" {
				return errors.New("--out and --as are required")
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				return err
			}
			if err := writeNewFile(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
				return err
			}
			entry, _ := json.Marshal(map[string]any{"warden": map[string]any{"approver_keys": map[string]string{name: base64.StdEncoding.EncodeToString(pub)}}})
			fmt.Fprintf(cmd.OutOrStdout(), "private key written to %s (keep it secret)\npublic key for policy data (data.warden.approver_keys):\n%s\n", out, entry)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the private key to (PEM, created with mode 0600)")
	cmd.Flags().StringVar(&name, "as", "", "approver name the key belongs to")
	return cmd
}

// readSigningKey reads an Ed25519 private key: PEM PKCS#8 (as keygen and
// `openssl genpkey -algorithm ed25519` write it) or base64 of the 32-byte
// seed or 64-byte key.
func readSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	if block, _ := pem.Decode(b); block != nil {
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key %s is not an Ed25519 key", path)
		}
		return priv, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: neither PEM nor base64", path)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(raw), nil
	}
	return nil, fmt.Errorf("signing key %s: %d bytes is not an Ed25519 seed or key", path, len(raw))
}
