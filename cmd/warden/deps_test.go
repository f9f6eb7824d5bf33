package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDepsStartsAPrivatePostgres runs `make deps`'s script on a machine
// where nothing answers on the PostgreSQL port: it must start a private
// cluster from the installed server binaries, with trust auth and a
// database "test", and say how to stop it. (The usual path, a server
// already on 5432, is what every `make test` takes.)
func TestDepsStartsAPrivatePostgres(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	// The data directory must be reachable by the postgres user when the
	// script runs as root (initdb refuses root).
	base, err := os.MkdirTemp("", "warden-deps-pg-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	data := filepath.Join(base, "data")

	deps := func() *exec.Cmd {
		cmd := exec.Command("bash", "../../scripts/deps.sh")
		cmd.Env = append(os.Environ(), "WARDEN_DEPS_PG_PORT="+strconv.Itoa(port), "WARDEN_PG_DATA="+data,
			"WARDEN_CHROMIUM=/bin/true", "WARDEN_TEST_DATABASE_URL=")
		return cmd
	}
	out, err := deps().CombinedOutput()
	t.Logf("%s", out)
	var stop string
	for line := range strings.Lines(string(out)) {
		if _, rest, ok := strings.Cut(line, "stop it with: "); ok {
			stop = strings.TrimSpace(rest)
		}
	}
	if stop != "" {
		t.Cleanup(func() {
			f := strings.Fields(stop)
			if out, err := exec.Command(f[0], append(f[1:], "-m", "immediate")...).CombinedOutput(); err != nil {
				t.Logf("stop the private cluster: %v: %s", err, out)
			}
		})
	}
	require.NoError(t, err)
	require.Contains(t, string(out), "initializing a private cluster in "+data)
	require.Contains(t, string(out), "starting the private cluster")
	require.NotEmpty(t, stop, "the script says how to stop the cluster")
	url := "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/test"
	require.Contains(t, string(out), url+" ready")
	got, err := exec.Command("psql", url, "-XAtqc", "SELECT current_database()").CombinedOutput()
	require.NoError(t, err, "%s", got)
	require.Equal(t, "test", strings.TrimSpace(string(got)))

	// Run again: the cluster answers now and is reused, not re-created.
	out, err = deps().CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "127.0.0.1:"+strconv.Itoa(port)+" answers; using it")
}
