package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/sandbox"
	"github.com/wardenhq/warden/tools"
)

// TestMain makes the test binary both the sandbox init and the Go tool child.
func TestMain(m *testing.M) {
	tools.Reexec()
	code := m.Run()
	if toolBinary.path != "" {
		os.RemoveAll(filepath.Dir(toolBinary.path))
	}
	os.Exit(code)
}

// envReport is what the custom Go tool echo_env returns.
type envReport struct {
	Workspace      string            `json:"workspace"`
	IdempotencyKey string            `json:"idempotency_key"`
	Config         map[string]string `json:"config"`
	Secret         string            `json:"secret"`
	Greeting       string            `json:"greeting"`
}

type echoEnvArgs struct {
	Greeting string `json:"greeting"`
}

func echoEnv(_ context.Context, env tools.Env, args echoEnvArgs) (string, error) {
	if args.Greeting == "fail" {
		return "", errors.New("asked to fail")
	}
	b, err := json.Marshal(envReport{
		Workspace:      env.Workspace,
		IdempotencyKey: env.IdempotencyKey,
		Config:         env.Config,
		Secret:         os.Getenv("WARDEN_TEST_SECRET"),
		Greeting:       args.Greeting,
	})
	return string(b), err
}

var echoEnvDef = tools.Def[echoEnvArgs]{
	Name:        "echo_env",
	Description: "Reports what a Go tool sees.",
	Risk:        warden.RiskLow,
	Idempotent:  true,
	Run:         echoEnv,
	Config:      map[string]string{"colour": "blue"},
}

// registered at package initialization, before TestMain calls Reexec, so the
// Go tool child finds echo_env too.
var _ = mustRegistry(tools.Options{})

func mustRegistry(opts tools.Options) *tools.Registry {
	r, err := tools.NewRegistry(opts)
	if err != nil {
		panic(err)
	}
	if err := tools.Register(r, echoEnvDef); err != nil {
		panic(err)
	}
	return r
}

func newSandbox(t testing.TB) *sandbox.Runner {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{})
	require.NoError(t, err)
	return sb
}

// runTool runs a call in a fresh workspace (unless in.Workspace is set).
func runTool(t *testing.T, r *tools.Registry, in tools.RunInput) warden.ToolOutput {
	t.Helper()
	if in.Workspace == "" {
		in.Workspace = t.TempDir()
	}
	out, err := r.Run(context.Background(), newSandbox(t), in)
	require.NoError(t, err)
	return out
}

func schemaOf(t *testing.T, r *tools.Registry, name string) map[string]any {
	t.Helper()
	spec, ok := r.Spec(name)
	require.True(t, ok)
	var s map[string]any
	require.NoError(t, json.Unmarshal(spec.Schema, &s))
	return s
}

func TestBuiltinSchemas(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	for name, required := range map[string][]any{
		tools.ToolShell:       {"argv"},
		tools.ToolReadFile:    {"path"},
		tools.ToolWriteFile:   {"path", "content"},
		tools.ToolIssueRefund: {"order_id", "amount_cents", "currency", "reason"},
	} {
		t.Run(name, func(t *testing.T) {
			s := schemaOf(t, r, name)
			require.Equal(t, "object", s["type"])
			require.Equal(t, false, s["additionalProperties"])
			require.ElementsMatch(t, required, s["required"])
			for _, key := range []string{"$schema", "$id", "$defs", "$ref"} {
				require.NotContains(t, s, key)
			}
		})
	}

	props := schemaOf(t, r, tools.ToolShell)["properties"].(map[string]any)
	argv := props["argv"].(map[string]any)
	require.Equal(t, "array", argv["type"])
	require.EqualValues(t, 1, argv["minItems"])
	require.Equal(t, map[string]any{"type": "string"}, argv["items"])

	props = schemaOf(t, r, tools.ToolWriteFile)["properties"].(map[string]any)
	require.Equal(t, "boolean", props["append"].(map[string]any)["type"])

	props = schemaOf(t, r, tools.ToolIssueRefund)["properties"].(map[string]any)
	require.Equal(t, "^[A-Za-z0-9-]{1,64}$", props["order_id"].(map[string]any)["pattern"])
	require.Equal(t, "^[A-Z]{3}$", props["currency"].(map[string]any)["pattern"])
	amount := props["amount_cents"].(map[string]any)
	require.Equal(t, "integer", amount["type"])
	require.EqualValues(t, 1, amount["minimum"])
	require.EqualValues(t, 100000000, amount["maximum"])
	require.NotEmpty(t, amount["description"])
}

func TestBuiltinMetadata(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	for _, want := range []warden.ToolSpec{
		{Name: tools.ToolShell, Risk: warden.RiskMedium, Idempotent: false, Effects: []string{"exec"}},
		{Name: tools.ToolReadFile, Risk: warden.RiskLow, Idempotent: true, Effects: []string{"read"}},
		{Name: tools.ToolWriteFile, Risk: warden.RiskMedium, Idempotent: false, Effects: []string{"write"}},
		{Name: tools.ToolIssueRefund, Risk: warden.RiskHigh, Idempotent: false, Effects: []string{"payment"}},
	} {
		got, ok := r.Spec(want.Name)
		require.True(t, ok)
		require.NotEmpty(t, got.Description)
		require.Equal(t, want.Risk, got.Risk, want.Name)
		require.Equal(t, want.Idempotent, got.Idempotent, want.Name)
		require.Equal(t, want.Effects, got.Effects, want.Name)
	}
}

func TestValidateErrorsNameTheArgument(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	valid := `{"order_id":"1234","amount_cents":25000,"currency":"USD","reason":"damaged"}`
	require.NoError(t, r.Validate(tools.ToolIssueRefund, json.RawMessage(valid)))
	require.NoError(t, r.Validate(tools.ToolShell, json.RawMessage(`{"argv":["ls"]}`)))
	require.NoError(t, r.Validate(tools.ToolWriteFile, json.RawMessage(`{"path":"a","content":"","append":true}`)))

	for _, tc := range []struct {
		name, tool, args string
		want             []string
	}{
		{"wrong type", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":"250","currency":"USD","reason":"x"}`,
			[]string{`argument "amount_cents": expected integer, got string`}},
		{"fraction", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":2.5,"currency":"USD","reason":"x"}`,
			[]string{`argument "amount_cents": expected integer, got number`}},
		{"exponent", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":1e3,"currency":"USD","reason":"x"}`,
			[]string{`argument "amount_cents": expected an integer written without fraction or exponent, within range; got number 1e3`}},
		{"missing required", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":250,"reason":"x"}`,
			[]string{`missing required argument "currency"`}},
		{"two missing", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":250}`,
			[]string{`missing required argument "currency"`, `missing required argument "reason"`}},
		{"extra field", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":250,"currency":"USD","reason":"x","approve":true}`,
			[]string{`unknown argument "approve" (allowed: order_id, amount_cents, currency, reason)`}},
		{"bad pattern", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":250,"currency":"usd","reason":"x"}`,
			[]string{`argument "currency": "usd" does not match the pattern ^[A-Z]{3}$`}},
		{"bad order id", tools.ToolIssueRefund,
			`{"order_id":"12 34; rm","amount_cents":250,"currency":"USD","reason":"x"}`,
			[]string{`argument "order_id": "12 34; rm" does not match the pattern ^[A-Za-z0-9-]{1,64}$`}},
		{"below minimum", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":0,"currency":"USD","reason":"x"}`,
			[]string{`argument "amount_cents": must be at least 1, got 0`}},
		{"above maximum", tools.ToolIssueRefund,
			`{"order_id":"1234","amount_cents":100000001,"currency":"USD","reason":"x"}`,
			[]string{`argument "amount_cents": must be at most 100000000, got 100000001`}},
		{"empty argv", tools.ToolShell, `{"argv":[]}`,
			[]string{`argument "argv": must have at least 1 item(s), got 0`}},
		{"argv item type", tools.ToolShell, `{"argv":["echo", 1]}`,
			[]string{`argument "argv[1]": expected string, got number`}},
		{"argv as string", tools.ToolShell, `{"argv":"ls -la"}`,
			[]string{`argument "argv": expected array, got string`}},
		{"not an object", tools.ToolShell, `["ls"]`,
			[]string{`arguments must be a JSON object, got array`}},
		{"null", tools.ToolShell, `null`,
			[]string{`arguments must be a JSON object, got null`}},
		{"empty", tools.ToolReadFile, ``,
			[]string{`missing required argument "path"`}},
		{"not JSON", tools.ToolShell, `{"argv":`,
			[]string{`arguments are not valid JSON`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Validate(tc.tool, json.RawMessage(tc.args))
			require.ErrorIs(t, err, tools.ErrInvalidArgs)
			var argsErr *tools.ArgsError
			require.ErrorAs(t, err, &argsErr)
			require.Equal(t, tc.tool, argsErr.Tool)
			require.Len(t, argsErr.Problems, len(tc.want), "problems: %q", argsErr.Problems)
			for i, want := range tc.want {
				require.Contains(t, argsErr.Problems[i], want)
			}
			require.Contains(t, err.Error(), tc.tool)
		})
	}
}

func TestUnknownTool(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	err := r.Validate("rm_rf", json.RawMessage(`{}`))
	require.ErrorIs(t, err, tools.ErrUnknownTool)
	require.ErrorContains(t, err, `"rm_rf"`)
	require.ErrorContains(t, err, "shell")

	_, err = r.Run(context.Background(), newSandbox(t), tools.RunInput{Tool: "rm_rf", Args: json.RawMessage(`{}`), Workspace: t.TempDir()})
	require.ErrorIs(t, err, tools.ErrUnknownTool)

	_, ok := r.Spec("rm_rf")
	require.False(t, ok)
}

func TestSpecsFilterAndOrder(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	names := func(specs []warden.ToolSpec) []string {
		var out []string
		for _, s := range specs {
			out = append(out, s.Name)
		}
		return out
	}
	require.Equal(t, []string{"echo_env", "http_get", "issue_refund", "read_file", "shell", "write_file"}, names(r.Specs(nil)))
	require.Equal(t, []string{"read_file", "shell"}, names(r.Specs([]string{"shell", "nope", "read_file"})))
	require.Empty(t, r.Specs([]string{"nope"}))

	// Specs are copies: changing one does not change the registry.
	s := r.Specs([]string{"shell"})[0]
	s.Effects[0] = "changed"
	got, _ := r.Spec("shell")
	require.Equal(t, []string{"exec"}, got.Effects)
}

func TestRegisterRefusesBadDefinitions(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	argv := func(echoEnvArgs) ([]string, error) { return []string{"true"}, nil }
	base := tools.Def[echoEnvArgs]{Name: "ok_tool", Description: "d", Risk: warden.RiskLow, Argv: argv}
	require.NoError(t, tools.Register(r, base))

	for _, tc := range []struct {
		name string
		def  func(d *tools.Def[echoEnvArgs])
		want string
	}{
		{"duplicate", func(d *tools.Def[echoEnvArgs]) {}, "already registered"},
		{"builtin duplicate", func(d *tools.Def[echoEnvArgs]) { d.Name = "shell" }, "already registered"},
		{"bad name", func(d *tools.Def[echoEnvArgs]) { d.Name = "has space" }, "must match"},
		{"bad risk", func(d *tools.Def[echoEnvArgs]) { d.Name = "x1"; d.Risk = "extreme" }, "risk"},
		{"both", func(d *tools.Def[echoEnvArgs]) { d.Name = "x2"; d.Run = echoEnv }, "exactly one of Argv and Run"},
		{"neither", func(d *tools.Def[echoEnvArgs]) { d.Name = "x3"; d.Argv = nil }, "exactly one of Argv and Run"},
		{"bad config key", func(d *tools.Def[echoEnvArgs]) {
			d.Name = "x4"
			d.Config = map[string]string{"Bad-Key": "v"}
		}, "config key"},
		{"malformed summary", func(d *tools.Def[echoEnvArgs]) { d.Name = "x5"; d.Summary = "say {greeting" }, "summary template"},
		{"summary filter", func(d *tools.Def[echoEnvArgs]) { d.Name = "x6"; d.Summary = "say {greeting|upper}" }, "unknown filter"},
		{"summary names no argument", func(d *tools.Def[echoEnvArgs]) { d.Name = "x7"; d.Summary = "say {salutation}" }, `names argument "salutation"`},
		{"go tool name taken in process", func(d *tools.Def[echoEnvArgs]) {
			d.Name = "echo_env_clash"
			d.Argv = nil
			d.Run = func(context.Context, tools.Env, echoEnvArgs) (string, error) { return "", nil }
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			tc.def(&d)
			err := tools.Register(r, d)
			if tc.want == "" {
				// First registration of a new Go tool name succeeds; a
				// different Run under the same name then fails, even in
				// another registry.
				require.NoError(t, err)
				// Registered after Reexec ran: the child does not know it,
				// and that is a deployment fault, not a tool failure.
				_, err = r.Run(context.Background(), newSandbox(t), tools.RunInput{Tool: d.Name, Args: json.RawMessage(`{"greeting":"x"}`), Workspace: t.TempDir()})
				require.ErrorIs(t, err, sandbox.ErrSandbox)
				require.ErrorContains(t, err, "registered before Reexec")
				other := mustRegistry(tools.Options{})
				d.Run = echoEnv
				require.ErrorContains(t, tools.Register(other, d), "process-wide")
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}

	err := tools.Register(r, tools.Def[string]{Name: "stringly", Risk: warden.RiskLow, Argv: func(string) ([]string, error) { return nil, nil }})
	require.ErrorContains(t, err, "not a struct")
}

func TestShellRunsInTheWorkspace(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	dir := t.TempDir()
	out := runTool(t, r, tools.RunInput{Tool: "shell", Args: json.RawMessage(`{"argv":["echo","hi"]}`), Workspace: dir})
	require.Equal(t, "hi\n", out.Content)
	require.False(t, out.IsError)
	require.Equal(t, 0, out.ExitCode)
	require.False(t, out.Truncated)

	out = runTool(t, r, tools.RunInput{Tool: "shell", Args: json.RawMessage(`{"argv":["pwd"]}`), Workspace: dir})
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	require.Equal(t, real+"\n", out.Content)

	// No shell interpretation unless asked for.
	out = runTool(t, r, tools.RunInput{Tool: "shell", Args: json.RawMessage(`{"argv":["echo","$HOME","a|b"]}`), Workspace: dir})
	require.Equal(t, "$HOME a|b\n", out.Content)
}

func TestShellFailureIsAnErrorOutput(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	out := runTool(t, r, tools.RunInput{Tool: "shell", Args: json.RawMessage(`{"argv":["sh","-c","echo out; echo bad >&2; exit 3"]}`)})
	require.True(t, out.IsError)
	require.Equal(t, 3, out.ExitCode)
	require.Equal(t, "out\n[stderr]\nbad\n", out.Content)

	out = runTool(t, r, tools.RunInput{Tool: "shell", Args: json.RawMessage(`{"argv":["no-such-program"]}`)})
	require.True(t, out.IsError)
	require.Equal(t, 127, out.ExitCode)
	require.Contains(t, out.Content, "executable file not found")
}

func TestOutputTruncation(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	out := runTool(t, r, tools.RunInput{
		Tool:        "shell",
		Args:        json.RawMessage(`{"argv":["sh","-c","yes | head -c 100000"]}`),
		Obligations: warden.Obligations{MaxOutputBytes: 100},
	})
	require.True(t, out.Truncated)
	require.False(t, out.IsError)
	require.Equal(t, strings.Repeat("y\n", 50)+"[output truncated at 100 bytes]", out.Content)
}

func TestTimeoutObligation(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	start := time.Now()
	out := runTool(t, r, tools.RunInput{
		Tool:        "shell",
		Args:        json.RawMessage(`{"argv":["sh","-c","echo started; sleep 30"]}`),
		Obligations: warden.Obligations{TimeoutSeconds: 1},
	})
	require.Less(t, time.Since(start), 10*time.Second)
	require.True(t, out.IsError)
	require.Equal(t, "started\n[killed: timeout after 1s]", out.Content)
}

// TestMemoryObligation: memory_bytes bounds the whole run where the
// sandbox has a cgroup: four processes under the address space limit each
// exceed it together, and the model reads why one was killed.
func TestMemoryObligation(t *testing.T) {
	t.Parallel()
	if c := newSandbox(t).Cgroup(); c.Mode == sandbox.CgroupNone {
		t.Skipf("no usable cgroup here: %s", strings.Join(c.Notes, "; "))
	}
	r := mustRegistry(tools.Options{})
	out := runTool(t, r, tools.RunInput{
		Tool:        "shell",
		Args:        json.RawMessage(`{"argv":["sh","-c","for i in 1 2 3 4; do dd if=/dev/zero bs=40M count=1 2>/dev/null | sleep 2 & done; wait"]}`),
		Obligations: warden.Obligations{MemoryBytes: 64 << 20, TimeoutSeconds: 20},
	})
	require.True(t, out.IsError)
	require.Contains(t, out.Content, "warden sandbox: killed: memory limit 67108864 bytes exceeded")
	require.True(t, strings.HasSuffix(out.Content, "[killed: out of memory]"), out.Content)
}

func TestRunValidatesAgain(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	dir := t.TempDir()
	_, err := r.Run(context.Background(), newSandbox(t), tools.RunInput{
		Tool:      "write_file",
		Args:      json.RawMessage(`{"path":"x","content":"y","mode":"0777"}`),
		Workspace: dir,
	})
	require.ErrorIs(t, err, tools.ErrInvalidArgs)
	require.ErrorContains(t, err, `unknown argument "mode"`)
	require.NoFileExists(t, filepath.Join(dir, "x"))
}

func TestRunWithoutSandboxFailsClosed(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	_, err := r.Run(context.Background(), nil, tools.RunInput{Tool: "shell", Args: json.RawMessage(`{"argv":["true"]}`), Workspace: t.TempDir()})
	require.ErrorIs(t, err, sandbox.ErrSandbox)

	// A missing workspace is a sandbox failure too.
	_, err = r.Run(context.Background(), newSandbox(t), tools.RunInput{Tool: "shell", Args: json.RawMessage(`{"argv":["true"]}`), Workspace: filepath.Join(t.TempDir(), "gone")})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
}

func TestReadWriteRoundTrip(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	dir := t.TempDir()
	call := func(tool string, args any) warden.ToolOutput {
		raw, err := json.Marshal(args)
		require.NoError(t, err)
		return runTool(t, r, tools.RunInput{Tool: tool, Args: raw, Workspace: dir})
	}

	out := call("write_file", tools.WriteFileArgs{Path: "notes/today/todo.txt", Content: "buy milk\n"})
	require.False(t, out.IsError, out.Content)
	require.Equal(t, "wrote 9 bytes to notes/today/todo.txt", out.Content)
	out = call("write_file", tools.WriteFileArgs{Path: "notes/today/todo.txt", Content: "call bob\n", Append: true})
	require.Equal(t, "appended 9 bytes to notes/today/todo.txt", out.Content)

	out = call("read_file", tools.ReadFileArgs{Path: "notes/today/todo.txt"})
	require.False(t, out.IsError, out.Content)
	require.Equal(t, "buy milk\ncall bob\n", out.Content)
	onDisk, err := os.ReadFile(filepath.Join(newSandbox(t).HostPath(dir), "notes", "today", "todo.txt"))
	require.NoError(t, err)
	require.Equal(t, "buy milk\ncall bob\n", string(onDisk))

	out = call("write_file", tools.WriteFileArgs{Path: "notes/today/todo.txt", Content: "done"})
	require.False(t, out.IsError)
	out = call("read_file", tools.ReadFileArgs{Path: "./notes/today/todo.txt"})
	require.Equal(t, "done", out.Content)

	out = call("read_file", tools.ReadFileArgs{Path: "missing.txt"})
	require.True(t, out.IsError)
	require.Contains(t, out.Content, "missing.txt: no such file or directory in the workspace")

	out = call("read_file", tools.ReadFileArgs{Path: "notes"})
	require.True(t, out.IsError)
	require.Contains(t, out.Content, "is a directory")
}

func TestFileToolsStayInTheWorkspace(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	parent := t.TempDir()
	dir := filepath.Join(parent, "ws")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "a"), 0o755))

	outside := t.TempDir()
	outsideFile := filepath.Join(outside, "secret.txt")
	require.NoError(t, os.WriteFile(outsideFile, []byte("top secret"), 0o644))
	require.NoError(t, os.Symlink("/etc", filepath.Join(dir, "etc")))
	require.NoError(t, os.Symlink(outsideFile, filepath.Join(dir, "secret")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "out")))

	escapeName := fmt.Sprintf("warden-escape-test-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.Remove(filepath.Join("/etc", escapeName)) })

	for _, tc := range []struct {
		path string
		want string
	}{
		{"../x", `must not contain ".." elements; got ../x`},
		{"/etc/passwd", "path must be relative to the workspace; got /etc/passwd"},
		{"a/../../x", `must not contain ".." elements; got a/../../x`},
		{"etc/passwd", "outside the workspace"},
		{"etc/" + escapeName, "outside the workspace"},
		{"secret", "outside the workspace"},
		{"out/new.txt", "outside the workspace"},
		{"out/sub/new.txt", "outside the workspace"},
	} {
		for _, tool := range []string{"read_file", "write_file"} {
			t.Run(tool+" "+tc.path, func(t *testing.T) {
				args, err := json.Marshal(map[string]any{"path": tc.path, "content": "pwned"})
				require.NoError(t, err)
				if tool == "read_file" {
					args, err = json.Marshal(map[string]any{"path": tc.path})
					require.NoError(t, err)
				}
				out := runTool(t, r, tools.RunInput{Tool: tool, Args: args, Workspace: dir})
				require.True(t, out.IsError, "content: %s", out.Content)
				require.Contains(t, out.Content, tc.want)
				require.NotContains(t, out.Content, "root:")
				require.NotContains(t, out.Content, "top secret")
			})
		}
	}

	// Nothing was created or changed outside the workspace.
	require.NoFileExists(t, filepath.Join(parent, "x"))
	require.NoFileExists(t, filepath.Join("/x"))
	require.NoFileExists(t, filepath.Join("/etc", escapeName))
	require.NoFileExists(t, filepath.Join(outside, "new.txt"))
	require.NoDirExists(t, filepath.Join(outside, "sub"))
	secret, err := os.ReadFile(outsideFile)
	require.NoError(t, err)
	require.Equal(t, "top secret", string(secret))
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, entries, 1) // ws only
}

func TestIssueRefundAppendsOncePerKey(t *testing.T) {
	t.Parallel()
	ledger := filepath.Join(t.TempDir(), "ledger.jsonl")
	r := mustRegistry(tools.Options{LedgerPath: ledger})
	args := json.RawMessage(`{"order_id":"1234","amount_cents":25000,"currency":"USD","reason":"arrived broken"}`)
	dir := t.TempDir()

	out := runTool(t, r, tools.RunInput{Tool: "issue_refund", Args: args, Workspace: dir, IdempotencyKey: "key-1"})
	require.False(t, out.IsError, out.Content)
	require.Equal(t, "refund of 250.00 USD issued for order 1234 (ledger entry 1)", out.Content)
	entries, err := tools.ReadLedger(ledger)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "key-1", entries[0].IdempotencyKey)
	require.Equal(t, "1234", entries[0].OrderID)
	require.EqualValues(t, 25000, entries[0].AmountCents)
	require.Equal(t, "USD", entries[0].Currency)
	require.Equal(t, "arrived broken", entries[0].Reason)
	require.WithinDuration(t, time.Now(), entries[0].At, time.Minute)

	// The same key again: no second entry, and the output says so.
	out = runTool(t, r, tools.RunInput{Tool: "issue_refund", Args: args, Workspace: dir, IdempotencyKey: "key-1"})
	require.False(t, out.IsError, out.Content)
	require.Contains(t, out.Content, "refund already issued under key key-1 (ledger entry 1")
	entries, err = tools.ReadLedger(ledger)
	require.NoError(t, err)
	require.Len(t, entries, 1)

	// Another key is another refund.
	out = runTool(t, r, tools.RunInput{Tool: "issue_refund", Args: json.RawMessage(`{"order_id":"A-9","amount_cents":5,"currency":"EUR","reason":"late"}`), Workspace: dir, IdempotencyKey: "key-2"})
	require.Equal(t, "refund of 0.05 EUR issued for order A-9 (ledger entry 2)", out.Content)
	entries, err = tools.ReadLedger(ledger)
	require.NoError(t, err)
	require.Len(t, entries, 2)

	// No key, no money.
	out = runTool(t, r, tools.RunInput{Tool: "issue_refund", Args: args, Workspace: dir})
	require.True(t, out.IsError)
	require.Contains(t, out.Content, "idempotency key")
	entries, err = tools.ReadLedger(ledger)
	require.NoError(t, err)
	require.Len(t, entries, 2)
}

func TestIssueRefundConcurrentSameKey(t *testing.T) {
	t.Parallel()
	ledger := filepath.Join(t.TempDir(), "ledger.jsonl")
	r := mustRegistry(tools.Options{LedgerPath: ledger})
	sb := newSandbox(t)
	args := json.RawMessage(`{"order_id":"77","amount_cents":100,"currency":"USD","reason":"dup"}`)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			out, err := r.Run(context.Background(), sb, tools.RunInput{Tool: "issue_refund", Args: args, Workspace: t.TempDir(), IdempotencyKey: "same"})
			if err == nil && out.IsError {
				err = errors.New(out.Content)
			}
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	entries, err := tools.ReadLedger(ledger)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestIssueRefundNeedsALedger(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	out := runTool(t, r, tools.RunInput{
		Tool:           "issue_refund",
		Args:           json.RawMessage(`{"order_id":"1","amount_cents":1,"currency":"USD","reason":"x"}`),
		IdempotencyKey: "k",
	})
	require.True(t, out.IsError)
	require.Contains(t, out.Content, "no ledger path")

	_, err := tools.ReadLedger(filepath.Join(t.TempDir(), "none.jsonl"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestIssueRefundDelayComesAfterTheEntry(t *testing.T) {
	t.Parallel()
	ledger := filepath.Join(t.TempDir(), "ledger.jsonl")
	r := mustRegistry(tools.Options{LedgerPath: ledger, RefundDelay: time.Minute})
	args := json.RawMessage(`{"order_id":"1","amount_cents":1,"currency":"USD","reason":"x"}`)

	// A timeout during the delay: the entry is written, the call failed —
	// exactly the unknown outcome a crash leaves.
	out := runTool(t, r, tools.RunInput{Tool: "issue_refund", Args: args, IdempotencyKey: "slow", Obligations: warden.Obligations{TimeoutSeconds: 2}})
	require.True(t, out.IsError)
	require.Contains(t, out.Content, "timeout")
	entries, err := tools.ReadLedger(ledger)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestCustomGoToolSeesOnlyWhatIsPassed(t *testing.T) {
	// Not parallel: sets an environment variable of the worker.
	t.Setenv("WARDEN_TEST_SECRET", "hunter2")
	r := mustRegistry(tools.Options{})
	dir := t.TempDir()
	out := runTool(t, r, tools.RunInput{Tool: "echo_env", Args: json.RawMessage(`{"greeting":"hello"}`), Workspace: dir, IdempotencyKey: "idem-1"})
	require.False(t, out.IsError, out.Content)
	var rep envReport
	require.NoError(t, json.Unmarshal([]byte(out.Content), &rep))
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	require.Equal(t, envReport{
		Workspace:      real,
		IdempotencyKey: "idem-1",
		Config:         map[string]string{"colour": "blue"},
		Greeting:       "hello",
	}, rep)

	out = runTool(t, r, tools.RunInput{Tool: "echo_env", Args: json.RawMessage(`{"greeting":"fail"}`), Workspace: dir})
	require.True(t, out.IsError)
	require.Equal(t, 1, out.ExitCode)
	require.Equal(t, "[stderr]\nasked to fail\n", out.Content)
}

// BenchmarkRunShellTrue runs a process tool (/bin/true) through the
// registry and the sandbox.
func BenchmarkRunShellTrue(b *testing.B) {
	r := mustRegistry(tools.Options{})
	sb := newSandbox(b)
	in := tools.RunInput{Tool: "shell", Args: json.RawMessage(`{"argv":["/bin/true"]}`), Workspace: b.TempDir()}
	for b.Loop() {
		if out, err := r.Run(context.Background(), sb, in); err != nil || out.IsError {
			b.Fatal(err, out.Content)
		}
	}
}

// BenchmarkRunGoTool runs a Go tool (read_file), which re-executes the
// binary a second time inside the sandbox.
func BenchmarkRunGoTool(b *testing.B) {
	r := mustRegistry(tools.Options{})
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
