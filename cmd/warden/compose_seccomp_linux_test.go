package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wardenhq/warden/sandbox"
)

// seccompProfile is the shape of a Docker (moby) seccomp profile: what
// dockerd decodes, field for field. Unknown fields fail the decode, so a
// misspelt key cannot be silently ignored by dockerd.
type seccompProfile struct {
	DefaultAction   string `json:"defaultAction"`
	DefaultErrnoRet *uint  `json:"defaultErrnoRet,omitempty"`
	ArchMap         []struct {
		Architecture     string   `json:"architecture"`
		SubArchitectures []string `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []seccompRule `json:"syscalls"`
}

type seccompRule struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet *uint    `json:"errnoRet,omitempty"`
	Args     []struct {
		Index    uint   `json:"index"`
		Value    uint64 `json:"value"`
		ValueTwo uint64 `json:"valueTwo"`
		Op       string `json:"op"`
	} `json:"args"`
	Comment  string         `json:"comment"`
	Includes *seccompFilter `json:"includes,omitempty"`
	Excludes *seccompFilter `json:"excludes,omitempty"`
}

type seccompFilter struct {
	Arches    []string `json:"arches,omitempty"`
	Caps      []string `json:"caps,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// unconditional reports whether r applies to every call of its names in a
// container without capabilities, on amd64 and arm64.
func (r seccompRule) unconditional() bool {
	return len(r.Args) == 0 && r.Includes == nil && r.Excludes == nil
}

// allows reports whether r lets a call with first argument arg0 through,
// for a container without capabilities on this architecture.
func (r seccompRule) allows(arg0 uint64) bool {
	if r.Action != "SCMP_ACT_ALLOW" {
		return false
	}
	if r.Includes != nil && len(r.Includes.Caps) > 0 {
		return false // the worker has no capabilities
	}
	for _, a := range r.Args {
		if a.Index != 0 {
			return false
		}
		switch a.Op {
		case "SCMP_CMP_MASKED_EQ":
			if arg0&a.Value != a.ValueTwo {
				return false
			}
		case "SCMP_CMP_EQ":
			if arg0 != a.Value {
				return false
			}
		case "SCMP_CMP_NE":
			if arg0 == a.Value {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func loadSeccompProfile(t *testing.T) seccompProfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../..", workerSeccompProfile))
	require.NoError(t, err, "the worker's seccomp profile must exist where docker-compose.yml names it")
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p seccompProfile
	require.NoError(t, dec.Decode(&p), "%s must be a Docker seccomp profile", workerSeccompProfile)
	return p
}

func TestComposeSeccompProfileIsDockersDefaultPlusTheSandbox(t *testing.T) {
	p := loadSeccompProfile(t)

	// Deny what is not listed.
	require.Contains(t, []string{"SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD"}, p.DefaultAction)
	if p.DefaultAction == "SCMP_ACT_ERRNO" {
		require.NotNil(t, p.DefaultErrnoRet)
		require.Equal(t, uint(unix.EPERM), *p.DefaultErrnoRet)
	}
	arches := map[string]bool{}
	for _, a := range p.ArchMap {
		arches[a.Architecture] = true
	}
	require.True(t, arches["SCMP_ARCH_X86_64"] && arches["SCMP_ARCH_AARCH64"], "the image's architectures: %v", arches)

	// Well-formed rules: known actions and operators, a reason for each.
	rules := map[string][]seccompRule{}
	for i, r := range p.Syscalls {
		require.NotEmpty(t, r.Names, "rule %d", i)
		require.Contains(t, []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"}, r.Action, "rule %d", i)
		require.NotEmpty(t, r.Comment, "rule %d (%v) says why", i, r.Names)
		for _, a := range r.Args {
			require.Contains(t, []string{"SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_MASKED_EQ"}, a.Op)
		}
		for _, n := range r.Names {
			require.Regexp(t, `^_?[a-z0-9_]+$`, n)
			rules[n] = append(rules[n], r)
		}
	}
	for name, rs := range rules {
		if len(rs) > 1 {
			for _, r := range rs {
				require.False(t, r.unconditional(), "%s is allowed unconditionally and also by a narrower rule: the narrower one means nothing", name)
			}
		}
	}
	allowed := func(name string, arg0 uint64) bool {
		for _, r := range rules[name] {
			if r.allows(arg0) {
				return true
			}
		}
		return false
	}

	// Everything the sandbox makes that Docker's default refuses.
	for _, c := range sandbox.ContainerSyscalls {
		if c.RootOnly {
			// The image runs as uid 10001: a root worker needs these too.
			require.False(t, allowed(c.Name, 0), "%s is only for a root worker: not allowed", c.Name)
			continue
		}
		require.True(t, allowed(c.Name, c.CloneFlags), "the profile must allow %s (%s)", c.Name, c.Why)
	}
	// clone: the sandbox's namespaces pass, a cgroup namespace does not.
	require.True(t, allowed("clone", unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD), "threads")
	require.False(t, allowed("clone", unix.CLONE_NEWCGROUP), "clone(CLONE_NEWCGROUP) stays refused")

	// What the default keeps from a container without capabilities, and the
	// sandbox does not need, stays refused.
	for _, name := range []string{"unshare", "setns", "chroot", "bpf", "perf_event_open", "fanotify_init", "lookup_dcookie",
		"fsopen", "fsconfig", "fsmount", "fspick", "open_tree", "move_mount", "umount", "setdomainname",
		"syslog", "quotactl", "quotactl_fd", "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module",
		"delete_module", "acct", "iopl", "ioperm", "settimeofday", "stime", "clock_settime", "vhangup",
		"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
		"mbind", "set_mempolicy", "get_mempolicy", "keyctl", "add_key", "request_key", "userfaultfd",
		"io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at", "swapon", "swapoff",
	} {
		require.False(t, allowed(name, 0), "%s must stay refused", name)
	}
	// Sockets: every family but vsock, as in Docker's default.
	require.True(t, allowed("socket", unix.AF_INET))
	require.True(t, allowed("socket", unix.AF_UNIX))
	require.False(t, allowed("socket", unix.AF_VSOCK))
	// What the worker and the init make besides: Go's runtime, Landlock, seccomp, capabilities.
	for _, name := range []string{"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "seccomp",
		"prctl", "capset", "close_range", "setrlimit", "prlimit64", "wait4", "waitid", "pidfd_open", "pidfd_send_signal",
		"execve", "openat", "mkdirat", "symlinkat", "fchdir", "rt_sigaction", "futex", "epoll_pwait", "sched_yield"} {
		require.True(t, allowed(name, 0), "%s", name)
	}
}

// privilegedCalls maps the golang.org/x/sys/unix wrappers of system calls
// Docker's default profile refuses a container without capabilities to
// the calls' names.
var privilegedCalls = map[string]string{
	"Mount": "mount", "Unmount": "umount2", "PivotRoot": "pivot_root", "MountSetattr": "mount_setattr",
	"OpenTree": "open_tree", "MoveMount": "move_mount", "Fsopen": "fsopen", "Fsmount": "fsmount",
	"FsconfigSetFlag": "fsconfig", "FsconfigSetString": "fsconfig", "FsconfigCreate": "fsconfig", "Fspick": "fspick",
	"Unshare": "unshare", "Setns": "setns", "Chroot": "chroot", "Sethostname": "sethostname", "Setdomainname": "setdomainname",
	"PtraceAttach": "ptrace", "PtraceSeize": "ptrace", "PidfdGetfd": "pidfd_getfd", "Kcmp": "kcmp",
}

// sandboxSyscalls scans the sandbox's (linux/amd64) source for the system
// calls it makes that Docker's default refuses without capabilities:
// wrapper calls, raw Syscall(unix.SYS_X, ...) of those, and
// SysProcAttr fields that make os/exec use clone with namespace flags
// (Cloneflags), unshare (Unshareflags) or clone3 (UseCgroupFD).
func sandboxSyscalls(t *testing.T) map[string][]string {
	t.Helper()
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", "amd64", false
	found := map[string][]string{}
	fset := token.NewFileSet()
	for _, dir := range []string{"../../sandbox", "../../sandbox/cmd/warden-sandbox-init"} {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			if ok, err := ctx.MatchFile(dir, name); err != nil || !ok {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
			require.NoError(t, err)
			ast.Inspect(f, func(n ast.Node) bool {
				where := func() string { return fset.Position(n.Pos()).String() }
				switch n := n.(type) {
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					var fn string
					if ok {
						if x, ok := sel.X.(*ast.Ident); ok && (x.Name == "unix" || x.Name == "syscall") {
							fn = sel.Sel.Name
						}
					} else if id, ok := n.Fun.(*ast.Ident); ok {
						fn = id.Name
					}
					if sc, ok := privilegedCalls[fn]; ok {
						found[sc] = append(found[sc], where())
					}
					switch fn {
					case "Syscall", "Syscall6", "RawSyscall", "RawSyscall6", "AllThreadsSyscall", "onAllThreads":
						if len(n.Args) > 0 {
							if s, ok := n.Args[0].(*ast.SelectorExpr); ok && strings.HasPrefix(s.Sel.Name, "SYS_") {
								sc := strings.ToLower(strings.TrimPrefix(s.Sel.Name, "SYS_"))
								if slices.Contains(slices.Collect(maps.Values(privilegedCalls)), sc) {
									found[sc] = append(found[sc], where())
								}
							}
						}
					}
				case *ast.KeyValueExpr:
					if k, ok := n.Key.(*ast.Ident); ok {
						switch k.Name {
						case "Cloneflags":
							found["clone"] = append(found["clone"], where())
						case "Unshareflags":
							found["unshare"] = append(found["unshare"], where())
						}
					}
				case *ast.AssignStmt:
					for _, l := range n.Lhs {
						if s, ok := l.(*ast.SelectorExpr); ok && s.Sel.Name == "UseCgroupFD" {
							found["clone3"] = append(found["clone3"], where())
						}
					}
				}
				return true
			})
		}
	}
	return found
}

func TestComposeSandboxSyscallListMatchesTheCode(t *testing.T) {
	found := sandboxSyscalls(t)
	listed := map[string]bool{}
	for _, c := range sandbox.ContainerSyscalls {
		listed[c.Name] = true
		require.NotEmpty(t, found[c.Name], "sandbox.ContainerSyscalls lists %s, which the sandbox no longer makes: drop it (and from %s)", c.Name, workerSeccompProfile)
		require.NotEmpty(t, c.Why, c.Name)
	}
	for name, at := range found {
		require.True(t, listed[name], "the sandbox makes %s (%v), which Docker's default refuses without capabilities: add it to sandbox.ContainerSyscalls and %s", name, at, workerSeccompProfile)
	}
	// The scan sees what it must: the known calls are found.
	for _, name := range []string{"mount", "pivot_root", "clone", "clone3", "open_tree"} {
		require.NotEmpty(t, found[name], name)
	}
}
