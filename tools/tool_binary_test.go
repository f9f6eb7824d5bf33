package tools_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/sandbox"
	"github.com/wardenhq/warden/tools"
)

var toolBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// builtToolBinary builds ./cmd/warden-tools once per test binary.
func builtToolBinary(tb testing.TB) string {
	tb.Helper()
	toolBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "warden-tools-")
		if err != nil {
			toolBinary.err = err
			return
		}
		toolBinary.path = filepath.Join(dir, "warden-tools")
		toolBinary.out, toolBinary.err = exec.Command("go", "build", "-o", toolBinary.path, "./cmd/warden-tools").CombinedOutput()
	})
	if toolBinary.err != nil {
		tb.Fatalf("build warden-tools: %v\n%s", toolBinary.err, toolBinary.out)
	}
	return toolBinary.path
}

// TestToolBinaryRunsBuiltins runs the built-in Go tools through the small
// warden-tools binary in both sandbox modes; a Go tool the embedding
// binary registered still re-executes that binary.
func TestToolBinaryRunsBuiltins(t *testing.T) {
	t.Parallel()
	bin := builtToolBinary(t)
	r := mustRegistry(tools.Options{ToolBinary: bin})
	for _, mode := range []string{sandbox.ModeIsolated, sandbox.ModeProcess} {
		sb, err := sandbox.New(sandbox.Options{Mode: mode, ProcessAsRoot: true})
		require.NoError(t, err)
		dir := t.TempDir()
		run := func(tool, args string) warden.ToolOutput {
			out, err := r.Run(context.Background(), sb, tools.RunInput{Tool: tool, Args: json.RawMessage(args), Workspace: dir})
			require.NoError(t, err, "%s %s", mode, tool)
			return out
		}
		out := run(tools.ToolWriteFile, `{"path":"notes/a.txt","content":"from warden-tools"}`)
		require.False(t, out.IsError, "%s: %s", mode, out.Content)
		out = run(tools.ToolReadFile, `{"path":"notes/a.txt"}`)
		require.Equal(t, "from warden-tools", out.Content, mode)
		out = run("echo_env", `{"greeting":"hi"}`)
		require.False(t, out.IsError, "%s: %s", mode, out.Content)
	}
	_, err := tools.NewRegistry(tools.Options{ToolBinary: "relative/warden-tools"})
	require.Error(t, err)
}

// BenchmarkRunGoToolBinary is BenchmarkRunGoTool through warden-tools.
func BenchmarkRunGoToolBinary(b *testing.B) {
	r := mustRegistry(tools.Options{ToolBinary: builtToolBinary(b)})
	sb := newSandbox(b)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	in := tools.RunInput{Tool: "read_file", Args: json.RawMessage(`{"path":"f"}`), Workspace: dir}
	for b.Loop() {
		if out, err := r.Run(context.Background(), sb, in); err != nil || out.IsError {
			b.Fatal(err, out.Content)
		}
	}
}

// BenchmarkRunGoToolWorkerBinary runs read_file through a worker binary
// (WARDEN_BENCH_WORKER, e.g. bin/warden), as Go tools run without
// warden-tools: every call pays that binary's package initialization.
func BenchmarkRunGoToolWorkerBinary(b *testing.B) {
	path := os.Getenv("WARDEN_BENCH_WORKER")
	if path == "" {
		b.Skip("set WARDEN_BENCH_WORKER to a worker binary")
	}
	r := mustRegistry(tools.Options{ToolBinary: path})
	sb := newSandbox(b)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	in := tools.RunInput{Tool: "read_file", Args: json.RawMessage(`{"path":"f"}`), Workspace: dir}
	for b.Loop() {
		if out, err := r.Run(context.Background(), sb, in); err != nil || out.IsError {
			b.Fatal(err, out.Content)
		}
	}
}
