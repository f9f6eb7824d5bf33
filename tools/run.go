package tools

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/egress"
	"github.com/wardenhq/warden/sandbox"
)

// Resource limits of every tool run, besides the policy's obligations
// (timeout and output cap).
const (
	// DefaultTimeout applies when the obligations set no timeout.
	DefaultTimeout = 30 * time.Second
	// FileSizeLimit is RLIMIT_FSIZE: the largest file a tool may write.
	FileSizeLimit = 64 << 20
	// OpenFilesLimit is RLIMIT_NOFILE.
	OpenFilesLimit = 256
	// GoToolAddressSpace is RLIMIT_AS for Go tools: the Go runtime reserves
	// address space generously.
	GoToolAddressSpace = 4 << 30
	// ProcessAddressSpace is RLIMIT_AS for process tools (shells, coreutils,
	// interpreters). Runtimes that reserve huge address ranges up front, such
	// as node or the JVM, need a tool of their own with a higher limit.
	ProcessAddressSpace = 2 << 30
)

// RunInput is one tool call to run.
type RunInput struct {
	Tool string
	// Args are the model's arguments; Run validates them again.
	Args json.RawMessage
	// Workspace is the run's workspace directory (it must exist).
	Workspace string
	// IdempotencyKey identifies the call; required by non-idempotent Go
	// tools that have side effects (issue_refund).
	IdempotencyKey string
	// Obligations are the policy's constraints: timeout, output cap,
	// memory, processes and the hosts the call may reach.
	Obligations warden.Obligations
	// Call names the call in egress logs; empty means IdempotencyKey.
	Call string
}

// Environment of a tool whose call was granted hosts.
const (
	// EnvEgressSocket is the path of the egress proxy's Unix socket inside
	// the sandbox (HTTP CONNECT host:port, see egress.DialVia).
	EnvEgressSocket = "WARDEN_EGRESS_SOCKET"
	// EnvEgressHosts lists the granted host:port pairs, comma-separated.
	EnvEgressHosts = "WARDEN_EGRESS_HOSTS"
)

// Run validates the call's arguments again (never trusting the caller),
// runs the tool in the sandbox sb and reports what came out, as the model
// will see it. A tool that fails — exits non-zero, times out, is killed by
// a limit — is an output with IsError set, not an error. Run returns an
// error when the tool is unknown (ErrUnknownTool), the arguments are
// invalid (ErrInvalidArgs), or the sandbox could not run the tool
// (sandbox.ErrSandbox): then the caller must fail closed, and for a
// non-idempotent tool treat a sandbox error after start as an unknown outcome.
func (r *Registry) Run(ctx context.Context, sb *sandbox.Runner, in RunInput) (warden.ToolOutput, error) {
	if sb == nil {
		return warden.ToolOutput{}, fmt.Errorf("run tool %s: %w: no sandbox runner", in.Tool, sandbox.ErrSandbox)
	}
	t, err := r.lookup(in.Tool)
	if err != nil {
		return warden.ToolOutput{}, err
	}
	if err := t.validate(in.Args); err != nil {
		return warden.ToolOutput{}, err
	}
	timeout := DefaultTimeout
	if in.Obligations.TimeoutSeconds > 0 {
		timeout = time.Duration(in.Obligations.TimeoutSeconds) * time.Second
	}
	maxOutput := sandbox.DefaultMaxOutputBytes
	if in.Obligations.MaxOutputBytes > 0 {
		maxOutput = in.Obligations.MaxOutputBytes
	}
	spec := sandbox.Spec{
		Dir: in.Workspace,
		Limits: sandbox.Limits{
			Timeout:        timeout,
			CPUSeconds:     uint64(timeout/time.Second) + 1,
			FileSize:       FileSizeLimit,
			OpenFiles:      OpenFilesLimit,
			MaxOutputBytes: maxOutput,
		},
		Binds: t.binds,
	}
	if t.goTool {
		spec.Argv = []string{sandbox.SelfExe, toolArg, t.spec.Name}
		if t.builtin && r.opts.ToolBinary != "" {
			spec.Argv[0] = r.opts.ToolBinary
			spec.Binds = append(slices.Clone(spec.Binds), sandbox.Bind{Path: r.opts.ToolBinary})
		}
		spec.Stdin = in.Args
		if len(spec.Stdin) == 0 {
			spec.Stdin = []byte("{}")
		}
		spec.Env = childEnv(in.IdempotencyKey, t.config)
		spec.Limits.AddressSpace = GoToolAddressSpace
	} else {
		argv, err := t.argv(in.Args)
		if err != nil {
			// The arguments fit the schema but not the tool.
			return warden.ToolOutput{}, &ArgsError{Tool: t.spec.Name, Problems: []string{err.Error()}}
		}
		spec.Argv = argv
		spec.Limits.AddressSpace = ProcessAddressSpace
	}
	if in.Obligations.MemoryBytes > 0 {
		spec.Limits.AddressSpace = in.Obligations.MemoryBytes
		// The whole run's memory, where the sandbox has a cgroup.
		spec.Limits.Memory = in.Obligations.MemoryBytes
	}
	spec.Limits.Processes = in.Obligations.Processes
	if len(in.Obligations.Hosts) > 0 {
		// Network only through the egress proxy, to exactly the granted
		// pairs: its socket's directory is bound into the sandbox.
		if r.opts.Egress == nil {
			return warden.ToolOutput{}, fmt.Errorf("run tool %s: %w: the policy grants hosts %v but the worker has no egress proxy",
				t.spec.Name, sandbox.ErrSandbox, in.Obligations.Hosts)
		}
		dir, closeGrant, err := r.opts.Egress.Grant(ctx, cmp.Or(in.Call, in.IdempotencyKey, t.spec.Name), in.Obligations.Hosts)
		if err != nil {
			return warden.ToolOutput{}, fmt.Errorf("run tool %s: %w: egress: %w", t.spec.Name, sandbox.ErrSandbox, err)
		}
		defer closeGrant()
		spec.Binds = append(slices.Clone(spec.Binds), sandbox.Bind{Path: dir})
		spec.Env = append(spec.Env,
			EnvEgressSocket+"="+filepath.Join(dir, egress.SocketName),
			EnvEgressHosts+"="+strings.Join(in.Obligations.Hosts, ","))
	}
	res, err := sb.Run(ctx, spec)
	if err != nil {
		return warden.ToolOutput{}, fmt.Errorf("run tool %s: %w", t.spec.Name, err)
	}
	if t.goTool && res.ExitCode == childExitUsage && !res.TimedOut {
		// The child could not even start the tool (it does not know it, or
		// could not read its input): a deployment fault, not the tool's.
		return warden.ToolOutput{}, fmt.Errorf("run tool %s: %w: Go tool child: %s",
			t.spec.Name, sandbox.ErrSandbox, strings.TrimSpace(string(res.Stderr)))
	}
	return outputOf(res, maxOutput, timeout), nil
}

// outputOf turns a sandbox result into what the model sees: stdout, then
// stderr under a "[stderr]" line, then notes on truncation and kills.
func outputOf(res sandbox.Result, maxOutput int, timeout time.Duration) warden.ToolOutput {
	var b strings.Builder
	b.Write(res.Stdout)
	newline := func() {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteByte('\n')
		}
	}
	if len(res.Stderr) > 0 {
		newline()
		b.WriteString("[stderr]\n")
		b.Write(res.Stderr)
	}
	truncated := res.StdoutTruncated || res.StderrTruncated
	if truncated {
		newline()
		fmt.Fprintf(&b, "[output truncated at %d bytes]", maxOutput)
	}
	switch {
	case res.TimedOut:
		newline()
		fmt.Fprintf(&b, "[killed: timeout after %s]", timeout)
	case res.MemoryExceeded:
		newline()
		b.WriteString("[killed: out of memory]")
	case res.Signal != "":
		newline()
		fmt.Fprintf(&b, "[killed by %s]", res.Signal)
	}
	return warden.ToolOutput{
		Content:    b.String(),
		IsError:    res.ExitCode != 0 || res.TimedOut || res.MemoryExceeded,
		ExitCode:   res.ExitCode,
		Truncated:  truncated,
		DurationMS: res.Duration.Milliseconds(),
	}
}
