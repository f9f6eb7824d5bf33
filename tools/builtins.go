package tools

import (
	"fmt"
	"os"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/sandbox"
)

// Names of the built-in tools.
const (
	ToolShell       = "shell"
	ToolReadFile    = "read_file"
	ToolWriteFile   = "write_file"
	ToolIssueRefund = "issue_refund"
	ToolHTTPGet     = "http_get"
)

// Config keys of issue_refund.
const (
	configLedger      = "ledger"
	configRefundDelay = "refund_delay"
)

// The built-in Go tools are in the process-wide table from the start, so a
// child finds them without building a registry.
func init() {
	for name, entry := range map[string]goToolEntry{
		ToolReadFile:    wrapRun(readFile),
		ToolWriteFile:   wrapRun(writeFile),
		ToolIssueRefund: wrapRun(issueRefund),
		ToolHTTPGet:     wrapRun(httpGet),
	} {
		if err := addGoTool(name, entry); err != nil {
			panic(err)
		}
	}
}

func registerBuiltins(r *Registry) error {
	if err := registerBuiltinTools(r); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range []string{ToolReadFile, ToolWriteFile, ToolIssueRefund, ToolHTTPGet} {
		if t, ok := r.tools[name]; ok {
			t.builtin = true
		}
	}
	return nil
}

func registerBuiltinTools(r *Registry) error {
	if err := Register(r, Def[ShellArgs]{
		Name: ToolShell,
		Description: "Run a program in the workspace and return its output. argv is executed directly, " +
			"without a shell: for pipes, redirection or globbing pass [\"sh\", \"-c\", \"<script>\"].",
		Risk:    warden.RiskMedium,
		Effects: []string{"exec"},
		Argv:    shellArgv,
		Summary: "shell: {argv|join}",
	}); err != nil {
		return err
	}
	if err := Register(r, Def[ReadFileArgs]{
		Name:        ToolReadFile,
		Description: "Read a text file in the workspace. The path is relative to the workspace.",
		Risk:        warden.RiskLow,
		Idempotent:  true,
		Effects:     []string{"read"},
		Run:         readFile,
		Summary:     "read_file: {path}",
	}); err != nil {
		return err
	}
	if err := Register(r, Def[WriteFileArgs]{
		Name: ToolWriteFile,
		Description: "Write (or with append, append to) a file in the workspace, creating parent " +
			"directories. The path is relative to the workspace.",
		Risk:    warden.RiskMedium,
		Effects: []string{"write"},
		Run:     writeFile,
		Summary: "write_file: {path}",
	}); err != nil {
		return err
	}

	if err := Register(r, Def[HTTPGetArgs]{
		Name: ToolHTTPGet,
		Description: "Fetch an http or https URL with GET and return the status, a few headers and the body. " +
			"Only hosts the policy grants for the call are reachable.",
		Risk:       warden.RiskMedium,
		Idempotent: true,
		Effects:    []string{"network"},
		Run:        httpGet,
		// No Summary: the Web UI shows the bare name, as it always has; a
		// URL's query can carry a token.
	}); err != nil {
		return err
	}

	refund := Def[RefundArgs]{
		Name: ToolIssueRefund,
		Description: "Refund an amount to the customer of an order. Moves money: the refund is recorded " +
			"in the payment ledger once per idempotency key.",
		Risk:    warden.RiskHigh,
		Effects: []string{"payment"},
		Run:     issueRefund,
		Summary: "issue_refund {amount_cents|cents} {currency}, order {order_id}",
		Config:  map[string]string{},
	}
	if r.opts.LedgerPath != "" {
		refund.Config[configLedger] = r.opts.LedgerPath
	}
	if r.opts.RefundDelay > 0 {
		refund.Config[configRefundDelay] = r.opts.RefundDelay.String()
	}
	t, err := newTool(refund)
	if err != nil {
		return err
	}
	if r.opts.LedgerPath != "" {
		// Only the ledger file is bound into the sandbox, never its
		// directory (the worker's data dir, with the audit database and
		// every run's workspace). It is created empty so it can be bound.
		f, err := os.OpenFile(r.opts.LedgerPath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		f.Close()
		t.binds = []sandbox.Bind{{Path: r.opts.LedgerPath, Writable: true}}
	}
	return r.add(t)
}
