package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/sandbox"
)

// Sentinel errors.
var (
	// ErrUnknownTool wraps every error about a tool name that is not registered.
	ErrUnknownTool = errors.New("unknown tool")
	// ErrInvalidArgs wraps every argument validation failure (see ArgsError).
	ErrInvalidArgs = errors.New("invalid arguments")
)

// Options configure a Registry and its built-in tools.
type Options struct {
	// LedgerPath is the JSON-lines file issue_refund appends to (created
	// on first use; its directory must exist). Empty means issue_refund
	// refuses to run.
	LedgerPath string
	// RefundDelay makes issue_refund sleep after it appended its ledger
	// entry, simulating a slow payment provider (crash tests kill the
	// worker during it). cmd/ sets it from WARDEN_REFUND_DELAY.
	RefundDelay time.Duration
	// Egress opens the network grants of calls whose obligations list
	// hosts. Nil means such calls fail (closed): no tool gets a network.
	Egress Egress
	// ToolBinary is an absolute path to a binary built from
	// ./tools/cmd/warden-tools (same commit as the worker) that runs the
	// built-in Go tools: it starts much faster than a large worker binary.
	// Empty means the built-ins re-execute the worker binary, like Go
	// tools registered by the worker always do.
	ToolBinary string
}

// Egress opens a per-call network grant: a directory holding the Unix
// socket of an HTTP CONNECT proxy that reaches exactly hosts.
// *egress.Proxy implements it.
type Egress interface {
	Grant(ctx context.Context, call string, hosts []string) (dir string, closeGrant func(), err error)
}

// Env is what a Go tool's Run gets besides its arguments. It reaches the
// sandboxed child explicitly, never through the worker's environment.
type Env struct {
	// Workspace is the run's workspace, the tool's working directory.
	Workspace string
	// IdempotencyKey identifies the call across retries; non-idempotent
	// tools use it to refuse doing the same effect twice.
	IdempotencyKey string
	// Config is the tool's configuration (Def.Config, or the registry's
	// options for built-ins), such as the ledger path.
	Config map[string]string
}

// Def declares a tool with typed arguments A, a struct whose JSON Schema is
// generated from its `json` and `jsonschema` tags: additional properties are
// refused, and fields are required unless their json tag says omitempty (a
// `jsonschema:"required"` tag also requires).
type Def[A any] struct {
	// Name is the wire name the model calls; [A-Za-z0-9_-]{1,64}.
	Name        string
	Description string
	// Risk is the author's hint; the policy decides the real risk.
	Risk warden.Risk
	// Idempotent tools may be retried; others get one attempt.
	Idempotent bool
	// Effects names the kinds of side effect ("read", "write", "exec",
	// "network", "payment").
	Effects []string
	// Summary is the template of a call's one-line summary for people, the
	// Temporal Web UI's summary of the activity that runs it: text with
	// placeholders over the top-level arguments, such as
	// "read_file: {path}" or "refund {amount_cents|cents} {currency}"
	// (syntax in warden.ParseSummary). Empty shows the tool name.
	// Register refuses a malformed template or one naming an argument A
	// does not have.
	Summary string

	// Exactly one of Argv and Run is set.

	// Argv makes a process tool: it maps the arguments to the argv of the
	// program run in the sandbox.
	Argv func(args A) ([]string, error)
	// Run makes a Go tool. It executes inside the sandbox, in a child
	// re-execution of this binary, so it must not depend on state of the
	// process that registered it: everything it needs comes from args and
	// Env. The child finds it by name in a process-wide table that Register
	// fills, so the binary must register it on every start, before Reexec
	// runs a tool (registering in main before calling Reexec, or in an
	// init function, does that).
	Run func(ctx context.Context, env Env, args A) (string, error)
	// Config is handed to Run as Env.Config. Keys match [a-z][a-z0-9_]*;
	// values travel in the child's environment, so no secrets.
	Config map[string]string
}

// tool is one registered tool.
type tool struct {
	spec   warden.ToolSpec
	schema *jsonschema.Schema
	// props are the top-level argument names, for error messages.
	props []string
	// decode decodes validated arguments into the Def's type, to catch
	// what the schema cannot (1e3 is an integer to JSON Schema, not to Go).
	decode func(json.RawMessage) error
	// argv is set for process tools.
	argv func(json.RawMessage) ([]string, error)
	// goTool marks a Go tool, run through the child; run is its entry in
	// the process-wide table.
	goTool bool
	run    goToolEntry
	config map[string]string
	// builtin marks the built-in Go tools Options.ToolBinary can run.
	builtin bool
	// binds are host paths outside the workspace the tool needs.
	binds []sandbox.Bind
}

// Registry holds the tools a worker offers. It is safe for concurrent use.
type Registry struct {
	opts  Options
	mu    sync.RWMutex
	tools map[string]*tool
}

// NewRegistry returns a registry holding the built-in tools, configured by opts.
func NewRegistry(opts Options) (*Registry, error) {
	if opts.LedgerPath != "" {
		abs, err := filepath.Abs(opts.LedgerPath)
		if err != nil {
			return nil, fmt.Errorf("ledger path: %w", err)
		}
		opts.LedgerPath = abs
		if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("ledger path %s: its directory must exist", abs)
		}
	}
	if opts.ToolBinary != "" {
		if !filepath.IsAbs(opts.ToolBinary) {
			return nil, fmt.Errorf("tool binary %s: must be an absolute path", opts.ToolBinary)
		}
		if fi, err := os.Stat(opts.ToolBinary); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("tool binary %s: not a regular file", opts.ToolBinary)
		}
	}
	if opts.RefundDelay < 0 {
		return nil, fmt.Errorf("refund delay must not be negative, got %s", opts.RefundDelay)
	}
	r := &Registry{opts: opts, tools: map[string]*tool{}}
	if err := registerBuiltins(r); err != nil {
		return nil, fmt.Errorf("register built-in tools: %w", err)
	}
	return r, nil
}

var (
	toolNameRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	configKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Register adds the tool d to r. It fails on a duplicate or malformed
// name, a bad Risk, not exactly one of Argv and Run, an argument type that
// is not a struct, a schema that does not compile, or a Go tool name that
// another Run already holds in this process.
func Register[A any](r *Registry, d Def[A]) error {
	t, err := newTool(d)
	if err != nil {
		return err
	}
	return r.add(t)
}

func newTool[A any](d Def[A]) (*tool, error) {
	if !toolNameRE.MatchString(d.Name) {
		return nil, fmt.Errorf("tool name %q must match %s", d.Name, toolNameRE)
	}
	if !d.Risk.Valid() {
		return nil, fmt.Errorf("tool %s: risk %q is not one of low, medium, high, critical", d.Name, d.Risk)
	}
	if (d.Argv == nil) == (d.Run == nil) {
		return nil, fmt.Errorf("tool %s: exactly one of Argv and Run must be set", d.Name)
	}
	for k := range d.Config {
		if !configKeyRE.MatchString(k) || k == "idempotency_key" {
			return nil, fmt.Errorf("tool %s: config key %q must match %s and not be idempotency_key", d.Name, k, configKeyRE)
		}
	}
	argsType := reflect.TypeFor[A]()
	for argsType.Kind() == reflect.Pointer {
		argsType = argsType.Elem()
	}
	if argsType.Kind() != reflect.Struct {
		return nil, fmt.Errorf("tool %s: arguments type %s is not a struct", d.Name, argsType)
	}
	schemaJSON, props, err := generateSchema(argsType)
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", d.Name, err)
	}
	compiled, err := compileSchema(d.Name, schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", d.Name, err)
	}
	names, err := warden.ParseSummary(d.Summary)
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", d.Name, err)
	}
	for _, n := range names {
		if !slices.Contains(props, n) {
			return nil, fmt.Errorf("tool %s: summary template names argument %q; the arguments are %s", d.Name, n, strings.Join(props, ", "))
		}
	}
	t := &tool{
		spec: warden.ToolSpec{
			Name:        d.Name,
			Description: d.Description,
			Schema:      schemaJSON,
			Risk:        d.Risk,
			Idempotent:  d.Idempotent,
			Effects:     slices.Clone(d.Effects),
			Summary:     d.Summary,
		},
		schema: compiled,
		props:  props,
		goTool: d.Run != nil,
		config: maps.Clone(d.Config),
		decode: func(raw json.RawMessage) error {
			_, err := decodeArgs[A](raw)
			return err
		},
	}
	if d.Run != nil {
		t.run = wrapRun(d.Run)
	}
	if d.Argv != nil {
		argvOf := d.Argv
		t.argv = func(raw json.RawMessage) ([]string, error) {
			args, err := decodeArgs[A](raw)
			if err != nil {
				return nil, err
			}
			return argvOf(args)
		}
	}
	return t, nil
}

// decodeArgs decodes validated arguments into A, refusing unknown fields
// again in case a caller skipped validation.
func decodeArgs[A any](raw json.RawMessage) (A, error) {
	var args A
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&args); err != nil {
		return args, fmt.Errorf("%w: decode: %w", ErrInvalidArgs, err)
	}
	return args, nil
}

// generateSchema reflects the JSON Schema of an arguments struct: inline
// (no $defs, no $id, no $schema), additional properties refused.
func generateSchema(t reflect.Type) (json.RawMessage, []string, error) {
	reflector := invopop.Reflector{Anonymous: true, DoNotReference: true, ExpandedStruct: true}
	s := reflector.ReflectFromType(t)
	s.Version = ""
	s.Definitions = nil
	var props []string
	if s.Properties != nil {
		for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
			props = append(props, pair.Key)
		}
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal schema: %w", err)
	}
	return raw, props, nil
}

func compileSchema(name string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	url := "urn:warden:tool:" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return s, nil
}

func (r *Registry) add(t *tool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.tools[t.spec.Name]; dup {
		return fmt.Errorf("tool %s is already registered", t.spec.Name)
	}
	if t.goTool {
		if err := addGoTool(t.spec.Name, t.run); err != nil {
			return err
		}
	}
	r.tools[t.spec.Name] = t
	return nil
}

func (r *Registry) lookup(name string) (*tool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.tools[name]
	if !ok {
		names := make([]string, 0, len(r.tools))
		for n := range r.tools {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w %q (available: %s)", ErrUnknownTool, name, strings.Join(names, ", "))
	}
	return t, nil
}

// Spec returns the named tool's description.
func (r *Registry) Spec(name string) (warden.ToolSpec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.tools[name]
	if !ok {
		return warden.ToolSpec{}, false
	}
	return cloneSpec(t.spec), true
}

// Specs returns the descriptions of the allowed tools sorted by name; an
// empty allowed list means every tool. Names not registered are ignored.
func (r *Registry) Specs(allowed []string) []warden.ToolSpec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	specs := make([]warden.ToolSpec, 0, len(r.tools))
	for name, t := range r.tools {
		if len(allowed) == 0 || slices.Contains(allowed, name) {
			specs = append(specs, cloneSpec(t.spec))
		}
	}
	slices.SortFunc(specs, func(a, b warden.ToolSpec) int { return strings.Compare(a.Name, b.Name) })
	return specs
}

func cloneSpec(s warden.ToolSpec) warden.ToolSpec {
	s.Schema = slices.Clone(s.Schema)
	s.Effects = slices.Clone(s.Effects)
	return s
}
