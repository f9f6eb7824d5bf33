package policies

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// bundle holds the default policy. Its files are under bundle/ so that
// fs.Sub gives the same relative paths a policy directory would.
//
//go:embed bundle
var bundle embed.FS

// dataFile is the name of the JSON documents a policy directory may hold.
// A data.json in the sub-directory a/b is mounted at data.a.b, as in an OPA
// bundle.
const dataFile = "data.json"

// source is a loaded set of policy files.
type source struct {
	// name says where the files came from, for messages.
	name string
	// modules are the parsed Rego modules by display path; tests are
	// included only when loaded for RunTests.
	modules map[string]*ast.Module
	// data is the merged content of every data.json.
	data map[string]any
	// revision identifies the policy modules and data (not the tests).
	revision string
}

// load reads the policy files opts names: the embedded bundle, or every
// *.rego and data.json under opts.Dir. Test modules are parsed only when
// withTests is set; they never take part in the revision.
func load(opts Options, withTests bool) (*source, error) {
	fsys, name, err := openSource(opts)
	if err != nil {
		return nil, err
	}
	src := &source{name: name, modules: map[string]*ast.Module{}, data: map[string]any{}}
	var hashed []hashedFile
	policies := 0
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		isRego := strings.HasSuffix(p, ".rego")
		isTest := strings.HasSuffix(p, "_test.rego")
		isData := d.Name() == dataFile
		if !isRego && !isData || isTest && !withTests {
			return nil
		}
		content, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		display := displayPath(opts, p)
		if isData {
			if err := mountData(src.data, p, content); err != nil {
				return fmt.Errorf("data file %s: %w", display, err)
			}
			hashed = append(hashed, hashedFile{p, content})
			return nil
		}
		module, err := ast.ParseModuleWithOpts(display, string(content), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			// OPA's parse errors name the file, row and column; keep their
			// text, not their type.
			return fmt.Errorf("parse %s: %v", display, err)
		}
		src.modules[display] = module
		if !isTest {
			policies++
			hashed = append(hashed, hashedFile{p, content})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load policies from %s: %w", name, err)
	}
	if policies == 0 {
		return nil, fmt.Errorf("load policies from %s: no .rego policy files (only *_test.rego or nothing)", name)
	}
	src.revision = revision(hashed)
	return src, nil
}

// openSource returns the file system opts names and a name for it.
func openSource(opts Options) (fs.FS, string, error) {
	if opts.Dir == "" {
		fsys, err := fs.Sub(bundle, "bundle")
		if err != nil {
			return nil, "", fmt.Errorf("open embedded policy bundle: %w", err)
		}
		return fsys, "the embedded policy bundle", nil
	}
	info, err := os.Stat(opts.Dir)
	if err != nil {
		return nil, "", fmt.Errorf("policy directory %s: %w", opts.Dir, err)
	}
	if !info.IsDir() {
		return nil, "", fmt.Errorf("policy directory %s: not a directory", opts.Dir)
	}
	return os.DirFS(opts.Dir), opts.Dir, nil
}

// displayPath is how a file is named in messages and OPA locations.
func displayPath(opts Options, p string) string {
	if opts.Dir == "" {
		return "bundle/" + p
	}
	return filepath.Join(opts.Dir, filepath.FromSlash(p))
}

// mountData merges the JSON object in content into data at the path of the
// file's directory.
func mountData(data map[string]any, p string, content []byte) error {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("must hold one JSON object: %w", err)
	}
	if dec.More() {
		return errors.New("must hold one JSON object: trailing data after it")
	}
	node := data
	var at []string
	if dir := path.Dir(p); dir != "." {
		for key := range strings.SplitSeq(dir, "/") {
			at = append(at, key)
			child, ok := node[key]
			if !ok {
				child = map[string]any{}
				node[key] = child
			}
			m, ok := child.(map[string]any)
			if !ok {
				return fmt.Errorf("data.%s is already set to a non-object", strings.Join(at, "."))
			}
			node = m
		}
	}
	return merge(node, doc, at)
}

// merge copies src into dst, descending into objects both hold; any other
// key both hold is a conflict.
func merge(dst, src map[string]any, at []string) error {
	for k, v := range src {
		here := append(slices.Clone(at), k)
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		oldMap, ok1 := old.(map[string]any)
		newMap, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("data.%s is set by more than one data file", strings.Join(here, "."))
		}
		if err := merge(oldMap, newMap, here); err != nil {
			return err
		}
	}
	return nil
}

type hashedFile struct {
	path    string
	content []byte
}

// revision is "sha256:" and the first 16 hex digits of a SHA-256 over the
// files' paths and contents in path order, each length-prefixed so no two
// different sets of files hash the same input.
func revision(files []hashedFile) string {
	slices.SortFunc(files, func(a, b hashedFile) int { return strings.Compare(a.path, b.path) })
	h := sha256.New()
	for _, f := range files {
		for _, part := range [][]byte{[]byte(f.path), f.content} {
			h.Write([]byte(strconv.Itoa(len(part))))
			h.Write([]byte{':'})
			h.Write(part)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}
