package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxReadFileBytes bounds what read_file loads; the output cap usually
// cuts far earlier.
const maxReadFileBytes = 16 << 20

// ReadFileArgs are the arguments of read_file.
type ReadFileArgs struct {
	Path string `json:"path" jsonschema:"minLength=1" jsonschema_description:"File path relative to the workspace, e.g. notes/todo.txt."`
}

// WriteFileArgs are the arguments of write_file.
type WriteFileArgs struct {
	Path    string `json:"path" jsonschema:"minLength=1" jsonschema_description:"File path relative to the workspace; missing parent directories are created."`
	Content string `json:"content" jsonschema_description:"The text to write."`
	Append  bool   `json:"append,omitempty" jsonschema_description:"Append to the file instead of replacing it."`
}

// checkRelative refuses, before touching the file system, paths that name
// something outside the workspace lexically. os.Root then refuses symlinks
// that lead out.
func checkRelative(path string) error {
	switch {
	case path == "":
		return errors.New("path is required")
	case strings.ContainsRune(path, 0):
		return errors.New("path must not contain a NUL byte")
	case filepath.IsAbs(path):
		return fmt.Errorf("path must be relative to the workspace; got %s", path)
	}
	for _, elem := range strings.Split(path, "/") {
		if elem == ".." {
			return fmt.Errorf("path must not contain \"..\" elements; got %s", path)
		}
	}
	return nil
}

// openWorkspace opens the workspace as an os.Root: every file operation
// through it stays inside, symlinks included.
func openWorkspace(env Env) (*os.Root, error) {
	if env.Workspace == "" {
		return nil, errors.New("no workspace")
	}
	root, err := os.OpenRoot(env.Workspace)
	if errors.Is(err, fs.ErrPermission) {
		// A root worker's process mode runs tools as an unprivileged id
		// that may not traverse the workspace's parents; the tool starts in
		// the workspace.
		if cwd, cerr := os.Getwd(); cerr == nil && cwd == env.Workspace {
			root, err = os.OpenRoot(".")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	return root, nil
}

// explainPathError rewords the errors the model is likely to cause.
func explainPathError(op, path string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: no such file or directory in the workspace", op, path)
	case errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes"):
		return fmt.Errorf("%s %s: path leads outside the workspace (through a symlink)", op, path)
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

func readFile(_ context.Context, env Env, args ReadFileArgs) (string, error) {
	if err := checkRelative(args.Path); err != nil {
		return "", err
	}
	root, err := openWorkspace(env)
	if err != nil {
		return "", err
	}
	defer root.Close()
	f, err := root.Open(args.Path)
	if err != nil {
		return "", explainPathError("read", args.Path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", explainPathError("read", args.Path, err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("read %s: is a directory (use the shell tool to list it)", args.Path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxReadFileBytes+1))
	if err != nil {
		return "", explainPathError("read", args.Path, err)
	}
	if len(data) > maxReadFileBytes {
		return string(data[:maxReadFileBytes]) + fmt.Sprintf("\n[file truncated at %d bytes]", maxReadFileBytes), nil
	}
	return string(data), nil
}

func writeFile(_ context.Context, env Env, args WriteFileArgs) (string, error) {
	if err := checkRelative(args.Path); err != nil {
		return "", err
	}
	root, err := openWorkspace(env)
	if err != nil {
		return "", err
	}
	defer root.Close()
	if dir := filepath.Dir(args.Path); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return "", explainPathError("create directory", dir, err)
		}
	}
	flag, verb := os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "wrote"
	if args.Append {
		flag, verb = os.O_WRONLY|os.O_CREATE|os.O_APPEND, "appended"
	}
	f, err := root.OpenFile(args.Path, flag, 0o644)
	if err != nil {
		return "", explainPathError("write", args.Path, err)
	}
	n, err := io.WriteString(f, args.Content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", explainPathError("write", args.Path, err)
	}
	return fmt.Sprintf("%s %d bytes to %s", verb, n, args.Path), nil
}
