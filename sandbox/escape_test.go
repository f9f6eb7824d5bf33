//go:build linux

package sandbox_test

// The escape suite: one test per attack on an isolated run, each proving
// containment from the host's side. CI runs it as root, the careless
// deployment: the sandbox must hold without the worker's privileges
// helping it. Attacks that need precise system calls run the test binary
// itself inside the sandbox (attackMain), which prints "ESCAPED: ..." for
// every step that worked and "contained: ..." for every step refused.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wardenhq/warden/sandbox"
)

// attackArg makes the test binary run attackMain (see TestMain).
const attackArg = "__warden_escape_attack"

// attackMain runs one attack inside the sandbox.
func attackMain(name string, args []string) int {
	report := func(step string, err error) {
		if err == nil {
			fmt.Printf("ESCAPED: %s\n", step)
		} else {
			fmt.Printf("contained: %s: %v\n", step, err)
		}
	}
	switch name {
	case "tcp":
		for _, addr := range args {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err == nil {
				c.Close()
			}
			report("connect "+addr, err)
		}
	case "ptrace":
		for _, pid := range []int{1, os.Getppid()} {
			err := unix.PtraceAttach(pid)
			report(fmt.Sprintf("ptrace attach %d", pid), err)
		}
		_, _, errno := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
		report("ptrace traceme", errnoErr(errno))
	case "mount":
		report("mount tmpfs", unix.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))
		report("mount proc", unix.Mount("proc", "/tmp", "proc", 0, ""))
		report("remount / rw", unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND, ""))
		report("umount /proc", unix.Unmount("/proc", unix.MNT_DETACH))
		_, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLONE)
		report("open_tree", err)
	case "unshare":
		for _, flag := range []uintptr{unix.CLONE_NEWUSER, unix.CLONE_NEWNS, unix.CLONE_NEWNET} {
			// A raw clone with namespace flags, as a C program would issue it.
			cmd := exec.Command("/bin/true")
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flag}
			report(fmt.Sprintf("clone(%#x)", flag), cmd.Run())
		}
		_, _, errno := unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
		report("unshare(CLONE_NEWUSER)", errnoErr(errno))
		report("setns", unix.Setns(0, 0))
	case "tiocsti":
		c := byte('x')
		for _, fd := range []int{0, 1, 2} {
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
			if errno == unix.ENOTTY {
				report(fmt.Sprintf("TIOCSTI on fd %d reached the tty layer", fd), nil)
				continue
			}
			report(fmt.Sprintf("TIOCSTI on fd %d", fd), errnoErr(errno))
		}
		f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err == nil {
			f.Close()
		}
		report("open /dev/tty", err)
	case "kill":
		for _, a := range args {
			pid, _ := strconv.Atoi(a)
			report(fmt.Sprintf("kill %d", pid), unix.Kill(pid, unix.SIGKILL))
		}
		// -1 reaches every process the sandbox may signal: only its own.
		_ = unix.Kill(-1, unix.SIGKILL)
	case "selfexe":
		for _, p := range []string{"/proc/self/exe", "/proc/1/exe"} {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err == nil {
				_, err = f.Write([]byte("pwned"))
				f.Close()
			}
			report("write "+p, err)
		}
	case "fds":
		for fd := 3; fd < 256; fd++ {
			if _, err := unix.Write(fd, []byte("pwned\n")); err == nil {
				report(fmt.Sprintf("write inherited fd %d", fd), nil)
			}
		}
		fmt.Println("contained: no descriptor beyond 0-2")
	case "memory":
		// args[0], when given, is how many MiB to allocate (default 16 GiB).
		chunks := 64
		if len(args) > 0 {
			mib, _ := strconv.Atoi(args[0])
			chunks = max(mib/256, 1)
		}
		var keep [][]byte
		for i := 0; i < chunks; i++ {
			b := make([]byte, 256<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		report(fmt.Sprintf("allocated %d MiB", len(keep)*256), nil)
	case "cgroupcheck":
		// Not an attack: the cgroup layer this process would get.
		json.NewEncoder(os.Stdout).Encode(sandbox.Check().Cgroup)
	case "noop":
		// Not an attack: the smallest Go program, for the benchmarks.
	default:
		if code, ok := hostileMain(name, args); ok {
			return code
		}
		fmt.Fprintln(os.Stderr, "unknown attack", name)
		return 2
	}
	return 0
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// attack runs attackMain's name inside an isolated sandbox.
func attack(t *testing.T, name string, spec sandbox.Spec, args ...string) sandbox.Result {
	t.Helper()
	spec.Argv = append([]string{sandbox.SelfExe, attackArg, name}, args...)
	res := run(t, spec)
	t.Logf("%s: exit %d\n%s%s", name, res.ExitCode, res.Stdout, res.Stderr)
	requireContained(t, res)
	return res
}

func requireContained(t *testing.T, res sandbox.Result) {
	t.Helper()
	require.NotContains(t, string(res.Stdout), "ESCAPED")
}

// marker returns a unique word to find the sandbox's processes by on the host.
func marker() string { return fmt.Sprintf("1000%d", rand.IntN(1e8)) }

// requireNoProcessWith fails while a host process has word in its command line.
func requireNoProcessWith(t *testing.T, word string) {
	t.Helper()
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || !strings.Contains(string(cmdline), word) {
				continue
			}
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if _, rest, _ := strings.Cut(string(stat), ") "); strings.HasPrefix(rest, "Z") {
				continue
			}
			return false
		}
		return true
	}, 3*time.Second, 20*time.Millisecond, "a process with %q survived the sandbox run", word)
}

func TestEscapeWriteOutsideWorkspace(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	dir := t.TempDir()
	res := run(t, sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c", fmt.Sprintf(`
		for f in /etc/warden-escape /usr/warden-escape /usr/local/bin/warden-escape /warden-escape /proc/warden-escape /dev/warden-escape; do
			echo pwned > "$f" && echo "ESCAPED: wrote $f"
		done
		# The sandbox's /tmp is its own tmpfs: these land there, not on the host.
		echo pwned > ../escape
		mkdir -p %[1]s && echo pwned > %[1]s/escape
		echo ok > in-workspace`, outside)}})
	requireContained(t, res)
	for _, p := range []string{"/etc/warden-escape", "/usr/warden-escape", "/usr/local/bin/warden-escape", "/warden-escape",
		filepath.Join(outside, "escape"), filepath.Join(filepath.Dir(dir), "escape")} {
		require.NoFileExists(t, p)
	}
	require.FileExists(t, filepath.Join(hostView(t, dir), "in-workspace"))
}

func TestEscapeCopyOutOfWorkspace(t *testing.T) {
	t.Parallel()
	// cp of a program out of the view: the host path is not in the view.
	outside := t.TempDir()
	res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", fmt.Sprintf("echo pwned > %s/x || true; cp /bin/true %s/y 2>/dev/null || true", outside, outside)}})
	require.Equal(t, 0, res.ExitCode)
	require.NoFileExists(t, filepath.Join(outside, "x"))
	require.NoFileExists(t, filepath.Join(outside, "y"))
}

func TestEscapeReadShadowAndRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to plant a file under /root")
	}
	secret := "warden-root-secret-" + marker()
	planted := filepath.Join("/root", ".warden-escape-"+marker())
	require.NoError(t, os.WriteFile(planted, []byte(secret), 0o600))
	t.Cleanup(func() { os.Remove(planted) })
	shadow, _ := os.ReadFile("/etc/shadow")

	res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", fmt.Sprintf(
		"cat /etc/shadow /etc/gshadow %s; ls -a /root; cat /root/* /root/.*; cat /proc/1/root/etc/shadow; ls /etc", planted)}})
	out := string(res.Stdout)
	require.NotContains(t, out, secret)
	require.NotContains(t, out, "root:")
	if len(shadow) > 0 {
		require.NotContains(t, out, strings.SplitN(string(shadow), "\n", 2)[0])
	}
	require.NotContains(t, out, "shadow")
	require.NotContains(t, out, "sudoers")
}

func TestEscapeReadWorkerEnvironment(t *testing.T) {
	// Not parallel: sets an environment variable of the test process.
	t.Setenv("WARDEN_ESCAPE_SECRET", "hunter2-"+marker())
	res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", fmt.Sprintf(
		"env; cat /proc/*/environ; cat /proc/%d/environ; cat /proc/1/environ; strings /proc/1/mem", os.Getpid())}})
	require.NotContains(t, string(res.Stdout), "hunter2")
	require.NotContains(t, string(res.Stdout), "WARDEN_ESCAPE_SECRET")
}

func TestEscapeTCP(t *testing.T) {
	t.Parallel()
	// Listeners on the host: loopback and every address.
	lo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lo.Close()
	all, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	defer all.Close()
	accepted := make(chan struct{}, 2)
	for _, l := range []net.Listener{lo, all} {
		go func() {
			if c, err := l.Accept(); err == nil {
				accepted <- struct{}{}
				c.Close()
			}
		}()
	}
	addrs := []string{lo.Addr().String(), fmt.Sprintf("127.0.0.1:%d", all.Addr().(*net.TCPAddr).Port)}
	for _, ip := range hostIPs() {
		addrs = append(addrs, net.JoinHostPort(ip, strconv.Itoa(all.Addr().(*net.TCPAddr).Port)))
	}
	addrs = append(addrs, "1.1.1.1:443", "[::1]:22")
	attack(t, "tcp", sandbox.Spec{}, addrs...)
	select {
	case <-accepted:
		t.Fatal("a host listener accepted a connection from the sandbox")
	default:
	}
}

func hostIPs() []string {
	var ips []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			ips = append(ips, n.IP.String())
		}
	}
	return ips
}

func TestEscapeForkBomb(t *testing.T) {
	t.Parallel()
	m := marker()
	start := time.Now()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep " + m, "bomb-" + m},
		Limits: sandbox.Limits{Timeout: 3 * time.Second, Processes: 64},
	})
	require.Less(t, time.Since(start), 10*time.Second)
	require.True(t, res.TimedOut || res.ExitCode != 0)
	requireNoProcessWith(t, m)
	if cgroupMode(t) != sandbox.CgroupNone {
		// The run's pids.max stopped it (no RLIMIT_NPROC is set then).
		require.True(t, res.ProcessesExceeded)
		require.Contains(t, string(res.Stderr), "warden sandbox: process limit 64 reached")
	}
}

func TestEscapeMemoryBomb(t *testing.T) {
	t.Parallel()
	if raceEnabled {
		t.Skip("RLIMIT_AS leaves the race detector no room for its shadow memory")
	}
	res := attack(t, "memory", sandbox.Spec{Limits: sandbox.Limits{AddressSpace: 1 << 30, Timeout: 20 * time.Second}})
	require.NotEqual(t, 0, res.ExitCode)
	require.Contains(t, string(res.Stderr), "out of memory")
}

// TestEscapeMemoryBombCgroup shows the run's cgroup, not RLIMIT_AS, stops
// a memory bomb: the address space limit (2 GiB) would let it allocate its
// 1 GiB, the cgroup's 128 MiB does not, and the kernel's kill is reported
// as the memory limit rather than a bare signal.
func TestEscapeMemoryBombCgroup(t *testing.T) {
	t.Parallel()
	requireCgroup(t)
	const limit = 128 << 20
	lim := sandbox.Limits{Memory: limit, AddressSpace: 2 << 30, Timeout: 20 * time.Second}
	if raceEnabled {
		lim.AddressSpace = 0 // see raceEnabled: the cgroup alone then
	}
	res := attack(t, "memory", sandbox.Spec{Limits: lim}, "1024")
	require.True(t, res.MemoryExceeded)
	require.Equal(t, "SIGKILL", res.Signal)
	require.Equal(t, 128+9, res.ExitCode)
	require.NotContains(t, string(res.Stdout), "allocated")
	require.NotContains(t, string(res.Stderr), "out of memory", "RLIMIT_AS stopped it, not the cgroup")
	require.Contains(t, string(res.Stderr), fmt.Sprintf("warden sandbox: killed: memory limit %d bytes exceeded", limit))
}

// TestCgroupMemoryIsPerRun shows Limits.Memory bounds the run as a whole:
// four processes of 96 MiB each stay under RLIMIT_AS one by one, and
// together exceed the run's 256 MiB.
func TestCgroupMemoryIsPerRun(t *testing.T) {
	t.Parallel()
	requireCgroup(t)
	// Each dd holds a 96 MiB block in memory while it waits on a full pipe.
	hog := "dd if=/dev/zero bs=96M count=1 2>/dev/null | sleep 2"
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", strings.Repeat(hog+" & ", 4) + "wait"},
		Limits: sandbox.Limits{Memory: 256 << 20, AddressSpace: 1 << 30, Timeout: 10 * time.Second},
	})
	require.True(t, res.MemoryExceeded, "exit %d timed out %v: %s", res.ExitCode, res.TimedOut, res.Stderr)
}

func TestEscapeCPUSpinPastDeadline(t *testing.T) {
	t.Parallel()
	m := marker()
	start := time.Now()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "trap '' TERM INT HUP; while :; do :; done", "spin-" + m},
		Limits: sandbox.Limits{Timeout: time.Second},
	})
	require.True(t, res.TimedOut)
	require.Less(t, time.Since(start), 5*time.Second)
	requireNoProcessWith(t, m)
}

func TestEscapeOutputFlood(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res := run(t, sandbox.Spec{
		Argv:   []string{"sh", "-c", "yes flood & yes flood >&2 & wait"},
		Limits: sandbox.Limits{Timeout: 2 * time.Second, MaxOutputBytes: 4096},
	})
	require.Less(t, time.Since(start), 6*time.Second)
	require.Len(t, res.Stdout, 4096)
	require.Len(t, res.Stderr, 4096)
	require.True(t, res.StdoutTruncated && res.StderrTruncated)
}

func TestEscapeDaemonOutlivesDeadline(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{0, time.Second} {
		m := marker()
		// setsid + double fork, stdio detached: a classic daemon.
		script := fmt.Sprintf("(setsid sh -c 'sleep %s </dev/null >/dev/null 2>&1 &' &); sleep 0.2", m)
		if timeout > 0 {
			script += "; sleep 100"
		}
		res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", script}, Limits: sandbox.Limits{Timeout: timeout}})
		require.Equal(t, timeout > 0, res.TimedOut)
		requireNoProcessWith(t, m)
	}
}

func TestEscapeSetuidBinary(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to plant setuid files")
	}
	// A secret only host uid 4242 may read, and cat made setuid 4242, in
	// a directory bound into the sandbox (a root worker refuses a
	// workspace holding another host user's files).
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("setuid-secret"), 0o600))
	require.NoError(t, os.Chown(secret, 4242, 4242))
	cat, err := os.ReadFile("/bin/cat")
	require.NoError(t, err)
	suid := filepath.Join(dir, "suidcat")
	require.NoError(t, os.WriteFile(suid, cat, 0o755))
	require.NoError(t, os.Chown(suid, 4242, 4242))
	require.NoError(t, os.Chmod(suid, 0o4755|os.ModeSetuid))

	res := run(t, sandbox.Spec{Binds: []sandbox.Bind{{Path: dir}}, Argv: []string{"sh", "-c",
		"cd " + dir + " && ls suidcat && ./suidcat secret; su -c 'cat /etc/shadow' root </dev/null; passwd -S root; grep Cap /proc/self/status"}})
	require.Contains(t, string(res.Stdout), "suidcat\n", "the planted binary is in the view: %s", res.Stderr)
	require.NotContains(t, string(res.Stdout), "setuid-secret")
	require.Contains(t, string(res.Stdout), "CapEff:\t0000000000000000")
	require.Contains(t, string(res.Stdout), "CapBnd:\t0000000000000000")
}

func TestEscapePtrace(t *testing.T) {
	t.Parallel()
	attack(t, "ptrace", sandbox.Spec{})
}

func TestEscapeMount(t *testing.T) {
	t.Parallel()
	attack(t, "mount", sandbox.Spec{})
	res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", "mount -t tmpfs x /tmp && echo ESCAPED; mount -o remount,rw / && echo ESCAPED; true"}})
	requireContained(t, res)
}

func TestEscapeUnshare(t *testing.T) {
	t.Parallel()
	attack(t, "unshare", sandbox.Spec{})
	res := run(t, sandbox.Spec{Argv: []string{"sh", "-c", "unshare -r -m -n true && echo ESCAPED; unshare -U true && echo ESCAPED; true"}})
	requireContained(t, res)
}

func TestEscapeSymlinkAndDotDot(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("outside-secret"), 0o644))
	dir := t.TempDir()
	// Symlinks planted on the host, pointing out of the workspace.
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "abs-link")))
	rel, err := filepath.Rel(dir, filepath.Join(outside, "secret"))
	require.NoError(t, err)
	require.NoError(t, os.Symlink(rel, filepath.Join(dir, "rel-link")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "dir-link")))

	res := run(t, sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c", fmt.Sprintf(`
		cat abs-link rel-link dir-link/secret %[1]s/secret ../../../../../..%[1]s/secret
		ln -s / root-link; cat root-link%[1]s/secret
		echo pwned > dir-link/planted; echo pwned > ../planted
		true`, outside)}})
	require.NotContains(t, string(res.Stdout), "outside-secret")
	require.NoFileExists(t, filepath.Join(outside, "planted"))
	require.NoFileExists(t, filepath.Join(filepath.Dir(dir), "planted"))
}

func TestEscapeWriteSelfExeAndInheritedFD(t *testing.T) {
	// Not parallel: the leaked descriptor would reach other tests' children.
	self, err := os.Executable()
	require.NoError(t, err)
	before, err := os.ReadFile(self)
	require.NoError(t, err)

	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("intact\n"), 0o666))
	f, err := os.OpenFile(victim, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	// A descriptor without close-on-exec, as a worker might inherit one.
	fd, err := unix.Dup(int(f.Fd()))
	require.NoError(t, err)
	defer unix.Close(fd)

	attack(t, "selfexe", sandbox.Spec{})
	attack(t, "fds", sandbox.Spec{})

	after, err := os.ReadFile(self)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(before), sha256.Sum256(after), "the worker binary changed")
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "intact\n", string(got))
}

func TestEscapeTIOCSTI(t *testing.T) {
	t.Parallel()
	// No terminal reaches the sandbox (stdin is /dev/null or a pipe, no
	// /dev/tty, a new session), and seccomp refuses TIOCSTI before the
	// tty layer is even asked: EPERM, not ENOTTY.
	res := attack(t, "tiocsti", sandbox.Spec{})
	require.Contains(t, string(res.Stdout), "contained: TIOCSTI on fd 0: operation not permitted")
}

func TestEscapeKillWorker(t *testing.T) {
	t.Parallel()
	// A host process of the same host uid the sandbox maps to, and the
	// worker itself.
	victim := exec.Command("sleep", "60")
	if os.Geteuid() == 0 {
		victim.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: sandbox.DefaultHostID, Gid: sandbox.DefaultHostID}}
	}
	require.NoError(t, victim.Start())
	defer func() { _ = victim.Process.Kill(); _ = victim.Wait() }()

	attack(t, "kill", sandbox.Spec{}, strconv.Itoa(os.Getpid()), strconv.Itoa(victim.Process.Pid), strconv.Itoa(os.Getppid()))
	require.NoError(t, victim.Process.Signal(syscall.Signal(0)), "the host process was killed")
}

func TestEscapeCallerCancelKillsTree(t *testing.T) {
	t.Parallel()
	m := marker()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := newRunner(t).Run(ctx, sandbox.Spec{Dir: t.TempDir(), Argv: []string{"sh", "-c", "sleep " + m + " & sleep " + m}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	requireNoProcessWith(t, m)
}

// FuzzSpecValidate feeds Spec.Validate arbitrary specs: it never panics,
// and a spec it accepts has a program, a workspace and absolute, clean
// bind paths.
func FuzzSpecValidate(f *testing.F) {
	f.Add("sh", "-c", "/tmp/ws", "A=1", "/data/ledger", true)
	f.Add("", "", "", "", "", false)
	f.Add("x\x00", "y", "rel", "NOEQ", "../etc", false)
	f.Add("/bin/true", "", "/", "=x", "/a/../b", true)
	f.Fuzz(func(t *testing.T, prog, arg, dir, env, bind string, writable bool) {
		spec := sandbox.Spec{Argv: []string{prog, arg}, Dir: dir, Env: []string{env}, Binds: []sandbox.Bind{{Path: bind, Writable: writable}}}
		if err := spec.Validate(); err != nil {
			require.ErrorIs(t, err, sandbox.ErrSandbox)
			return
		}
		require.NotEmpty(t, prog)
		require.NotEmpty(t, dir)
		require.True(t, filepath.IsAbs(bind))
		require.Equal(t, filepath.Clean(bind), bind)
		require.NotContains(t, bind+prog+arg+dir+env, "\x00")
		k, _, ok := strings.Cut(env, "=")
		require.True(t, ok && k != "")
	})
}

func TestEscapeSetuidFileOnTheHost(t *testing.T) {
	t.Parallel()
	// The workspace is id-mapped: the sandbox's root writes files owned by
	// the worker's uid on disk. A setuid bit on one would hand that uid to
	// whoever runs the file on the host, so seccomp refuses setuid and
	// setgid bits in every mode a program sets.
	dir := t.TempDir()
	res := run(t, sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c", `
		cp /bin/sh ./suid; chmod u+s ./suid; chmod 4755 ./suid; chmod g+s ./suid
		mkdir d; chmod g+s d
		install -m 4755 /bin/sh ./suid2
		true`}})
	require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
	view := hostView(t, dir)
	for _, name := range []string{"suid", "suid2", "d"} {
		fi, err := os.Stat(filepath.Join(view, name))
		if err != nil {
			continue
		}
		require.Zero(t, fi.Mode()&(os.ModeSetuid|os.ModeSetgid), "%s has mode %s on the host", name, fi.Mode())
	}
	fi, err := os.Stat(filepath.Join(view, "suid"))
	require.NoError(t, err, "cp itself still works")
	require.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
}

// TestProcessLimitIsPerRun shows Limits.Processes counts each run's own
// processes: two concurrent runs of the same host uid each get the whole
// limit, and one run cannot exceed it. With a cgroup it is the run's
// pids.max; without, RLIMIT_NPROC, which counts the run's own user
// namespace.
func TestProcessLimitIsPerRun(t *testing.T) {
	t.Parallel()
	script := func(n int) []string {
		return []string{"sh", "-c", fmt.Sprintf("for i in $(seq %d); do sleep 2 & done; wait", n)}
	}
	lim := sandbox.Limits{Processes: 40, Timeout: 20 * time.Second}
	errs := make(chan sandbox.Result, 2)
	for range 2 {
		go func() {
			res, err := newRunner(t).Run(context.Background(), sandbox.Spec{Argv: script(25), Dir: t.TempDir(), Limits: lim})
			if err != nil {
				res.ExitCode = -1
				res.Stderr = []byte(err.Error())
			}
			errs <- res
		}()
	}
	for range 2 {
		res := <-errs
		require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
	}
	res := run(t, sandbox.Spec{Argv: script(60), Limits: lim})
	require.Contains(t, string(res.Stderr), "fork")
}

// cgroupMode is the cgroup layer a default Runner uses on this host.
func cgroupMode(t *testing.T) string {
	t.Helper()
	return newRunner(t).Cgroup().Mode
}

// requireCgroup skips a test where no cgroup can bound a run.
func requireCgroup(t *testing.T) sandbox.CgroupReport {
	t.Helper()
	c := newRunner(t).Cgroup()
	if c.Mode == sandbox.CgroupNone {
		t.Skipf("no usable cgroup here (rlimits only): %s", strings.Join(c.Notes, "; "))
	}
	return c
}

// ownCgroups lists the run cgroups this process has below the bases.
func ownCgroups(t *testing.T, c sandbox.CgroupReport) []string {
	t.Helper()
	var left []string
	for _, base := range c.Paths {
		entries, err := os.ReadDir(base)
		require.NoError(t, err)
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), strconv.Itoa(os.Getpid())+"-") {
				left = append(left, filepath.Join(base, e.Name()))
			}
		}
	}
	return left
}

// TestCgroupsLeftBehind runs sandboxes that end every way a run can end —
// exit, timeout, caller cancel, OOM kill, a daemon that left the process
// group — and finds none of their cgroups afterwards. Not parallel: no
// other run of this process may hold a cgroup meanwhile.
func TestCgroupsLeftBehind(t *testing.T) {
	c := requireCgroup(t)
	require.Empty(t, ownCgroups(t, c))
	iso := newRunner(t)
	proc, err := sandbox.New(sandbox.Options{Mode: sandbox.ModeProcess, ProcessAsRoot: true})
	require.NoError(t, err)
	require.Equal(t, c, proc.Cgroup())
	ctx := context.Background()
	dir := t.TempDir()
	m := marker()

	res, err := iso.Run(ctx, sandbox.Spec{Dir: dir, Argv: []string{"true"}})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode)

	res, err = iso.Run(ctx, sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c", "sleep " + m + " & sleep " + m},
		Limits: sandbox.Limits{Timeout: 300 * time.Millisecond}})
	require.NoError(t, err)
	require.True(t, res.TimedOut)

	cancelled, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = iso.Run(cancelled, sandbox.Spec{Dir: dir, Argv: []string{"sleep", m}})
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	res, err = iso.Run(ctx, sandbox.Spec{Dir: dir, Argv: []string{sandbox.SelfExe, attackArg, "memory", "512"},
		Limits: sandbox.Limits{Memory: 64 << 20}})
	require.NoError(t, err)
	require.True(t, res.MemoryExceeded)

	// Process mode: a daemon that left the process group (setsid) is
	// still in the run's cgroup, and dies with it.
	res, err = proc.Run(ctx, sandbox.Spec{Dir: dir, Argv: []string{"sh", "-c", "setsid sleep " + m + " >/dev/null 2>&1 < /dev/null &"}})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode)

	require.Empty(t, ownCgroups(t, c))
	requireNoProcessWith(t, m)
}

// TestCgroupsOfDeadWorkerRemoved: a worker killed mid-run leaves its run
// cgroups behind; the next Runner on the host removes them (and never
// those of a live worker).
func TestCgroupsOfDeadWorkerRemoved(t *testing.T) {
	t.Parallel()
	c := requireCgroup(t)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	var stale, live []string
	for _, base := range c.Paths {
		stale = append(stale, filepath.Join(base, fmt.Sprintf("%d-1", dead.Process.Pid)))
		live = append(live, filepath.Join(base, fmt.Sprintf("%d-1", os.Getppid())))
	}
	for _, d := range append(stale, live...) {
		require.NoError(t, os.Mkdir(d, 0o755))
	}
	t.Cleanup(func() {
		for _, d := range live {
			os.Remove(d)
		}
	})
	newRunner(t)
	for _, d := range stale {
		require.NoDirExists(t, d)
	}
	for _, d := range live {
		require.DirExists(t, d)
	}
}

// TestCgroupNoneWhenNotRoot: a worker that is not root has no cgroup it may
// write on this host (none is delegated to it), and check says so with the
// reason, rather than pretending.
func TestCgroupNoneWhenNotRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the check as another user")
	}
	self, err := os.Executable()
	require.NoError(t, err)
	// Not t.TempDir: its parent directory is private to root.
	dir, err := os.MkdirTemp("", "warden-cgroup-check-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "check")
	raw, err := os.ReadFile(self)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, raw, 0o755))
	var out []byte
	for try := 0; ; try++ {
		cmd := exec.Command(bin, attackArg, "cgroupcheck")
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: sandbox.DefaultHostID, Gid: sandbox.DefaultHostID}}
		out, err = cmd.Output()
		// A parallel test's fork may still hold the copy open for writing
		// for an instant (ETXTBSY).
		if !errors.Is(err, syscall.ETXTBSY) || try == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, err)
	var c sandbox.CgroupReport
	require.NoError(t, json.Unmarshal(out, &c))
	t.Logf("as uid %d: %s %v", sandbox.DefaultHostID, c, c.Notes)
	require.Equal(t, sandbox.CgroupNone, c.Mode)
	require.Empty(t, c.Paths)
	require.NotEmpty(t, c.Notes)
}
