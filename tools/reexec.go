package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/wardenhq/warden/sandbox"
)

// Protocol between Registry.Run and the Go tool child.
const (
	// toolArg is the hidden first argument of a Go tool child:
	// `<binary> __warden_tool <name>`, arguments JSON on stdin.
	toolArg = "__warden_tool"
	// envIdempotencyKey carries Env.IdempotencyKey into the child.
	envIdempotencyKey = "WARDEN_TOOL_IDEMPOTENCY_KEY"
	// envConfigPrefix + upper-cased key carries each Env.Config entry.
	envConfigPrefix = "WARDEN_TOOL_"
	// maxChildArgsBytes bounds the arguments a child reads from stdin.
	maxChildArgsBytes = 64 << 20
)

// Exit codes of a Go tool child.
const (
	childExitOK        = 0
	childExitToolError = 1
	childExitUsage     = 2
)

// goToolFunc runs a Go tool on raw (validated) arguments.
type goToolFunc func(ctx context.Context, env Env, raw json.RawMessage) (string, error)

type goToolEntry struct {
	run goToolFunc
	// id is the code pointer of the Def's Run, to tell a re-registration
	// of the same tool from a different tool under the same name.
	id uintptr
}

// goTools is the process-wide table the child finds Go tools in.
var goTools = struct {
	sync.Mutex
	m map[string]goToolEntry
}{m: map[string]goToolEntry{}}

func wrapRun[A any](run func(ctx context.Context, env Env, args A) (string, error)) goToolEntry {
	return goToolEntry{
		id: reflect.ValueOf(run).Pointer(),
		run: func(ctx context.Context, env Env, raw json.RawMessage) (string, error) {
			args, err := decodeArgs[A](raw)
			if err != nil {
				return "", err
			}
			return run(ctx, env, args)
		},
	}
}

func addGoTool(name string, e goToolEntry) error {
	goTools.Lock()
	defer goTools.Unlock()
	if old, ok := goTools.m[name]; ok && old.id != e.id {
		return fmt.Errorf("tool %s: another Go tool already holds that name in this process (Go tool names are process-wide: the sandboxed child finds the tool by name)", name)
	}
	goTools.m[name] = e
	return nil
}

func lookupGoTool(name string) (goToolEntry, bool) {
	goTools.Lock()
	defer goTools.Unlock()
	e, ok := goTools.m[name]
	return e, ok
}

// Reexec must be the first call in main (and in TestMain) of every binary
// that runs tools. It calls sandbox.Init, so the binary can act as the
// sandbox init; then, when the process is a Go tool child (hidden arguments
// "__warden_tool <name>"), it runs the tool on the JSON arguments read from
// stdin, writes the result to stdout and exits 0, or writes the tool's
// error to stderr and exits non-zero. Otherwise it returns.
func Reexec() {
	sandbox.Init()
	if len(os.Args) != 3 || os.Args[1] != toolArg {
		return
	}
	os.Exit(runChild(os.Args[2], os.Stdin, os.Stdout, os.Stderr))
}

func runChild(name string, stdin io.Reader, stdout, stderr io.Writer) int {
	entry, ok := lookupGoTool(name)
	if !ok {
		fmt.Fprintf(stderr, "%s %q in this binary (is it registered before Reexec runs?)\n", ErrUnknownTool, name)
		return childExitUsage
	}
	raw, err := io.ReadAll(io.LimitReader(stdin, maxChildArgsBytes+1))
	if err != nil {
		fmt.Fprintf(stderr, "read arguments: %v\n", err)
		return childExitUsage
	}
	if len(raw) > maxChildArgsBytes {
		fmt.Fprintf(stderr, "arguments larger than %d bytes\n", maxChildArgsBytes)
		return childExitUsage
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "workspace: %v\n", err)
		return childExitUsage
	}
	env := Env{Workspace: wd, IdempotencyKey: os.Getenv(envIdempotencyKey), Config: map[string]string{}}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if key, ok := strings.CutPrefix(k, envConfigPrefix); ok && k != envIdempotencyKey {
			env.Config[strings.ToLower(key)] = v
		}
	}
	out, err := entry.run(context.Background(), env, raw)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return childExitToolError
	}
	if _, err := io.WriteString(stdout, out); err != nil {
		fmt.Fprintf(stderr, "write result: %v\n", err)
		return childExitToolError
	}
	return childExitOK
}

// childEnv lists the environment entries that carry key and config into
// the child, sorted by key for a stable order.
func childEnv(idempotencyKey string, config map[string]string) []string {
	env := []string{envIdempotencyKey + "=" + idempotencyKey}
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, envConfigPrefix+strings.ToUpper(k)+"="+config[k])
	}
	return env
}
