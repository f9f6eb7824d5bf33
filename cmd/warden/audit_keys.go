package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wardenhq/warden/audit"
)

func newAuditKeygenCmd() *cobra.Command {
	var out, keyID string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE --key-id ID",
		Short: "Create an Ed25519 seal key: FILE (private, for the sealer) and FILE.pub (public, for auditors)",
		Long: "The private key signs seals; keep it with the worker (WARDEN_AUDIT_SEAL_KEY), never in the database.\n" +
			"The public key file verifies them (warden audit verify --pubkey FILE.pub). To rotate, create a key with a\n" +
			"new ID, set not_after in the old key's .pub file to the switch time and verify with both (docs/audit.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || keyID == "" {
				return errors.New("--out and --key-id are required")
			}
			if err := writeSealKey(out, keyID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "seal key %s: private key %s (keep it secret, mode 0600), public key %s\n", keyID, out, out+".pub")
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the private key to; the public key goes to FILE.pub")
	cmd.Flags().StringVar(&keyID, "key-id", "", "the key's ID, recorded in every seal it signs (e.g. seal-2026-12)")
	return cmd
}

// writeSealKey creates a seal key with keyID: the private key at path
// (0600) and the public key at path.pub. Neither may exist yet.
func writeSealKey(path, keyID string) error {
	priv, pub, err := audit.GenerateSealKey(keyID, time.Now())
	if err != nil {
		return err
	}
	if err := writeNewFile(path, priv, 0o600); err != nil {
		return err
	}
	return writeNewFile(path+".pub", pub, 0o644)
}

func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// sealerFlags are the seal key and anchor of the commands that write seals.
type sealerFlags struct{ key, anchor string }

func (f *sealerFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.key, "seal-key", env("AUDIT_SEAL_KEY", ""), "private key that signs seals (warden audit keygen) (WARDEN_AUDIT_SEAL_KEY)")
	fs.StringVar(&f.anchor, "anchor", env("AUDIT_ANCHOR", ""), "append-only anchor file the seals are also written to (WARDEN_AUDIT_ANCHOR)")
}

// setUp makes store sign with the key and opens the anchor; close closes it.
func (f *sealerFlags) setUp(store audit.Store) (anchor *audit.Anchor, key *audit.PublicKey, err error) {
	if f.key != "" {
		signer, err := audit.LoadSealSigner(f.key)
		if err != nil {
			return nil, nil, err
		}
		if err := audit.SetSealSigner(store, signer); err != nil {
			return nil, nil, err
		}
		pub := signer.Public()
		key = &pub
	}
	if f.anchor != "" {
		if anchor, err = audit.OpenAnchor(f.anchor); err != nil {
			return nil, nil, err
		}
	}
	return anchor, key, nil
}
