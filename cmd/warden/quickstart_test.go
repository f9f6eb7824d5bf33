package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/internal/testenv"
)

// The README's quick start is the product's first impression, so it is run
// as written, on a fresh `git clone` of this checkout's HEAD (what a new
// user gets; uncommitted changes are not in it): every command of its first
// code block must exist and work. `make dev` runs until its demo run waits
// for approval, the printed approve command is run against it, and Ctrl-C
// must stop everything; `make test` (which would run this test again) is
// checked through its first step, `make deps`, and a dry run.

// quickStart returns the commands of the first ```sh block under
// "## Quick start", comments stripped.
func quickStart(t *testing.T, readme string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Quick start\n")
	require.True(t, ok, "README.md has no \"## Quick start\" section")
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	require.True(t, ok, "the quick start has no ```sh code block")
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok, "unterminated code block in the quick start")
	var cmds []string
	for _, line := range strings.Split(block, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

func TestQuickStartParsesTheREADME(t *testing.T) {
	readme := "# X\n\n## Quick start\n\nRequirements.\n\n```sh\nmake dev   # the stack\n\nmake test  # tests\n```\n\n```sh\nnot this\n```\n## Next\n"
	require.Equal(t, []string{"make dev", "make test"}, quickStart(t, readme))
}

func TestREADMEQuickStartInAFreshClone(t *testing.T) {
	if testing.Short() {
		t.Skip("clones the repository and runs make dev")
	}
	git, err := exec.LookPath("git")
	require.NoError(t, err, "git is needed to clone the repository")
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not a git checkout: nothing to clone")
	}
	cli, err := devserver.FindCLI()
	require.NoError(t, err, devserver.InstallHint)

	dir := filepath.Join(t.TempDir(), "warden")
	out, err := exec.Command(git, "clone", "--quiet", strings.TrimSpace(string(top)), dir).CombinedOutput()
	require.NoError(t, err, "git clone: %s", out)
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	require.NoError(t, err)
	readme := string(b)
	cmds := quickStart(t, readme)
	require.Contains(t, cmds, "make dev", "the quick start must give `make dev`")
	require.Contains(t, cmds, "make test", "the quick start must give `make test`")

	env := append(os.Environ(), "WARDEN_TEMPORAL_CLI="+cli, "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false")
	run := func(t *testing.T, timeout time.Duration, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %s in the fresh clone:\n%s", name, strings.Join(args, " "), out)
		return string(out)
	}

	// Every `make X` the README names anywhere is a target `make help` lists.
	help := run(t, time.Minute, "make", "help")
	for _, m := range regexp.MustCompile("`make ([a-z-]+)").FindAllStringSubmatch(readme, -1) {
		require.Contains(t, help, "make "+m[1]+" ", "README names `make %s`, which `make help` does not list", m[1])
	}

	for _, c := range cmds {
		switch c {
		case "make dev":
			t.Run("make dev", func(t *testing.T) { quickStartDev(t, dir, env) })
		case "make test":
			t.Run("make test", func(t *testing.T) {
				out := run(t, 5*time.Minute, "make", "deps")
				require.Contains(t, out, "deps: PostgreSQL:")
				require.Contains(t, out, "deps: Temporal CLI: "+cli)
				// The dry run prints the recipe (deps' recursive make runs for real: it is idempotent).
				out = run(t, 5*time.Minute, "make", "-n", "test")
				require.Contains(t, out, "scripts/deps.sh", "make test must run make deps first")
				require.Regexp(t, `go test .*\./\.\.\.`, out)
			})
		default:
			t.Run(c, func(t *testing.T) {
				f := strings.Fields(c)
				run(t, 10*time.Minute, f[0], f[1:]...)
			})
		}
	}

	// What the quick start built works.
	out = []byte(run(t, time.Minute, "./bin/warden", "--help"))
	for _, sub := range []string{"worker", "dev", "approve", "audit"} {
		require.Contains(t, string(out), sub)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// quickStartDev runs `make dev` (on free ports: a developer's own stack may
// hold 7233/8233) until its demo waits for approval, approves with the
// command it prints, and stops it the way a user does: SIGINT to the
// foreground process group.
func quickStartDev(t *testing.T, dir string, env []string) {
	port, uiPort := freeTCPPort(t), freeTCPPort(t)
	cmd := exec.Command("make", "dev", fmt.Sprintf("DEV_ARGS=--port %d --ui-port %d", port, uiPort))
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out testenv.SyncBuffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, pw), &out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); _ = pw.Close() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})

	// Wait for the line that says the stack is idle, remembering the approve command.
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	var approve string
	deadline := time.After(5 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "make dev exited before it was ready:\n%s", out.String())
			if s := strings.TrimSpace(l); strings.HasPrefix(s, "./bin/warden approve ") {
				approve = s
			}
			if strings.Contains(l, "Ctrl-C stops") {
				break wait
			}
		case <-deadline:
			t.Fatalf("make dev was not ready within 5 minutes:\n%s", out.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	o := out.String()
	require.Contains(t, o, "Warden dev stack is up.")
	require.Contains(t, o, fmt.Sprintf("http://127.0.0.1:%d", uiPort), "make dev prints the Web UI address")
	require.Contains(t, o, "Approver inbox")
	require.NotEmpty(t, approve, "make dev prints the approve command:\n%s", o)

	// The printed approve command works (pointed at this stack's port).
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ap := exec.CommandContext(ctx, "bash", "-c", fmt.Sprintf("%s --address 127.0.0.1:%d", approve, port))
	ap.Dir, ap.Env = dir, env
	apOut, err := ap.CombinedOutput()
	require.NoError(t, err, "%s:\n%s", approve, apOut)

	// Ctrl-C stops everything.
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("make dev did not stop within a minute of SIGINT:\n%s", out.String())
	}
	require.Contains(t, out.String(), "Stopping.", "make dev stops cleanly on Ctrl-C")
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		_ = c.Close()
		t.Fatalf("the dev server still listens on %d after make dev stopped", port)
	}
}
