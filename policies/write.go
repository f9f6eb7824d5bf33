package policies

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteBundle writes the embedded default bundle (policies, their tests and
// data.json) into dir, as a starting point for a user's policy directory.
func WriteBundle(dir string) error {
	return fs.WalkDir(bundle, "bundle", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("bundle", p)
		if err != nil {
			return err
		}
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := bundle.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return fmt.Errorf("write policy bundle: %w", err)
		}
		return nil
	})
}
