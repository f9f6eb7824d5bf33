// Checks of a Spec that need no host (Validate) and the ones Run adds:
// the workspace directory and the program's environment.

package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Validate checks what Run can check without touching the host: a
// program, a workspace, KEY=VALUE environment entries and absolute, clean
// bind paths without NUL bytes. Run calls it; every error wraps ErrSandbox.
func (s Spec) Validate() error {
	if len(s.Argv) == 0 {
		return fmt.Errorf("%w: empty argv", ErrSandbox)
	}
	for _, a := range s.Argv {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%w: argv entry contains a NUL byte", ErrSandbox)
		}
	}
	if s.Argv[0] == "" {
		return fmt.Errorf("%w: empty program name", ErrSandbox)
	}
	if s.Dir == "" {
		return fmt.Errorf("%w: workspace dir is required", ErrSandbox)
	}
	if strings.ContainsRune(s.Dir, 0) {
		return fmt.Errorf("%w: workspace dir contains a NUL byte", ErrSandbox)
	}
	if _, err := buildEnv("/", s.Env); err != nil {
		return err
	}
	for _, b := range s.Binds {
		if !filepath.IsAbs(b.Path) || strings.ContainsRune(b.Path, 0) {
			return fmt.Errorf("%w: bind path must be absolute, got %q", ErrSandbox, b.Path)
		}
		if filepath.Clean(b.Path) != b.Path || b.Path == "/" {
			return fmt.Errorf("%w: bind path must be clean and not the root, got %q", ErrSandbox, b.Path)
		}
	}
	if s.Limits.Timeout < 0 || s.Limits.MaxOutputBytes < 0 {
		return fmt.Errorf("%w: negative limit", ErrSandbox)
	}
	return nil
}

func checkDir(dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("%w: workspace dir is required", ErrSandbox)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w: workspace: %w", ErrSandbox, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%w: workspace: %w", ErrSandbox, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%w: workspace %s is not a directory", ErrSandbox, abs)
	}
	return abs, nil
}

// buildEnv returns the base environment overridden and extended by extra,
// one entry per key, base keys first.
func buildEnv(dir string, extra []string) ([]string, error) {
	env := []string{
		"PATH=" + BasePath,
		"HOME=" + dir,
		"TMPDIR=/tmp",
		"LANG=C.UTF-8",
	}
	index := map[string]int{"PATH": 0, "HOME": 1, "TMPDIR": 2, "LANG": 3}
	for _, kv := range extra {
		key, _, ok := strings.Cut(kv, "=")
		if !ok || key == "" || strings.ContainsRune(kv, 0) {
			return nil, fmt.Errorf("%w: env entry %q is not KEY=VALUE", ErrSandbox, kv)
		}
		if i, dup := index[key]; dup {
			env[i] = kv
			continue
		}
		index[key] = len(env)
		env = append(env, kv)
	}
	return env, nil
}
