package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Docs and comments that name a file of this repository (README.md,
// docs/*.md, BENCHMARKS.md, RELIABILITY.md and every Go comment) must name
// one that exists: a renamed or never-added file otherwise leaves readers
// following a dead reference. The test only reads files, so it needs no
// server and runs in milliseconds.

// docPathAllowed lists names that look like repository files but are not
// meant to be: each with the reason.
var docPathAllowed = map[string]string{
	"_vN.json":                 "a file-name suffix pattern (replay histories of older workflow code), not a file",
	"x.rego":                   "placeholder name for a policy file",
	"x_test.rego":              "placeholder name for a policy's test file",
	"warden/network/data.json": "a path inside a temporary policy directory written by teststack.PolicyDir",
}

// docPathToken is a run of characters that can make up a path, including
// the ones (placeholders, globs, URLs, line suffixes) that rule it out.
var docPathToken = regexp.MustCompile(`[A-Za-z0-9_.\-/<>*{}$~:@+%=]+`)

var docPathExt = []string{".md", ".go", ".rego", ".json", ".yml", ".yaml", ".sh"}

// docPathCandidate returns the path tok names, or "" when it is not a
// repository-relative file path.
func docPathCandidate(tok string, topDirs map[string]bool) string {
	if strings.Contains(tok, "://") {
		return "" // a URL
	}
	if i := strings.IndexByte(tok, ':'); i >= 0 {
		tok = tok[:i] // file.go:42, or a Go/YAML key before a colon
	}
	tok = strings.TrimRight(tok, ".,-")
	if tok == "" || strings.ContainsAny(tok, "<>*{}$~@+%=") {
		return "" // placeholder, glob, variable, address
	}
	if strings.HasPrefix(tok, "/") || strings.HasPrefix(tok, "//") {
		return "" // absolute path (/tmp, /etc, /proc ...)
	}
	for _, ext := range docPathExt {
		if strings.HasSuffix(tok, ext) && len(tok) > len(ext) {
			return tok
		}
	}
	// Without a file extension only a path under one of the repository's
	// top-level directories counts (cmd/warden, docs/screenshots), so
	// import paths, MIME types and "and/or" do not.
	if first, _, ok := strings.Cut(tok, "/"); ok && topDirs[first] {
		tok = strings.TrimRight(tok, "/")
		// cmd/warden.TestSandboxCheckCgroup names a package's exported
		// symbol; redact/testdata/corpus.txt stays a file.
		last := strings.LastIndexByte(tok, '/')
		if dot := strings.IndexByte(tok[last+1:], '.'); dot >= 0 {
			dot += last + 1
			if rest := tok[dot+1:]; rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
				tok = tok[:dot]
			}
		}
		return tok
	}
	return ""
}

func TestDocsNameFilesThatExist(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	topDirs := map[string]bool{}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			topDirs[e.Name()] = true
		}
	}
	// Every file's base name, for a bare name in a Go comment ("see
	// approval.go"), which may mean a file of another package.
	baseNames := map[string]bool{}
	var goFiles []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			baseNames[d.Name()] = true
			if strings.HasSuffix(path, ".go") {
				goFiles = append(goFiles, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{"README.md", "BENCHMARKS.md", "RELIABILITY.md"}
	more, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, m := range more {
		docs = append(docs, strings.TrimPrefix(m, root+string(filepath.Separator)))
	}
	if len(more) == 0 {
		t.Fatal("no docs/*.md found: is the test running from cmd/warden?")
	}

	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	// resolved reports whether name, cited in file, names an existing file:
	// relative to the citing file's directory, to the repository root, or
	// (a bare file name) anywhere in the repository.
	resolved := func(file, name string) bool {
		if docPathAllowed[name] != "" {
			return true
		}
		dir := filepath.Dir(filepath.Join(root, file))
		rel := filepath.Join(dir, name)
		if r, err := filepath.Rel(root, rel); err != nil || strings.HasPrefix(r, "..") {
			return true // outside the repository (../shared/...): not ours to check
		}
		if exists(rel) || exists(filepath.Join(root, name)) {
			return true
		}
		return !strings.Contains(name, "/") && baseNames[name]
	}

	var missing []string
	check := func(file string, lineNo int, text string) {
		for _, tok := range docPathToken.FindAllString(text, -1) {
			name := docPathCandidate(tok, topDirs)
			if name != "" && !resolved(file, name) {
				missing = append(missing, fmt.Sprintf("%s:%d: names %s, which does not exist", file, lineNo, name))
			}
		}
	}
	for _, doc := range docs {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			check(doc, i+1, line)
		}
	}
	for _, path := range goFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		file := strings.TrimPrefix(path, root+string(filepath.Separator))
		for i, line := range strings.Split(string(b), "\n") {
			if _, comment, ok := strings.Cut(line, "// "); ok && strings.HasPrefix(strings.TrimSpace(line), "//") {
				check(file, i+1, comment)
			}
		}
	}
	for _, m := range missing {
		t.Error(m)
	}
}
