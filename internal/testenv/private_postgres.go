package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// PostgresBinDir holds initdb and pg_ctl; WARDEN_TEST_POSTGRES_BIN overrides it.
const PostgresBinDir = "/usr/lib/postgresql/15/bin"

// PrivatePostgres is a PostgreSQL cluster of the test's own, which the test
// may restart or crash: the shared server on 5432 must never be touched.
type PrivatePostgres struct {
	// URL is the database URL of its postgres database.
	URL string
	// Port is the TCP port it listens on (127.0.0.1 only).
	Port int

	dir, data string
	cred      *syscall.Credential
}

// StartPrivatePostgres initializes a cluster in a temporary directory (trust
// auth, fsync on: restart tests are durability tests), starts it on a free
// port and removes it when the test ends. initdb refuses to run as root, so
// when the test runs as root the cluster runs as the postgres user.
func StartPrivatePostgres(t testing.TB) *PrivatePostgres {
	t.Helper()
	// Not t.TempDir: its 0700 parent is closed to the postgres user.
	dir, err := os.MkdirTemp("", "warden-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := &PrivatePostgres{dir: dir, data: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root needs a postgres user for initdb")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		require.NoError(t, os.Chown(dir, uid, gid))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.Port = l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	require.NoError(t, p.run("initdb", "-D", p.data, "-U", "postgres", "-A", "trust", "--no-sync"))
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = on\nsynchronous_commit = on\nmax_connections = 100\n", p.Port, dir)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(conf)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, p.pgctl("start"))
	t.Cleanup(func() { _ = p.pgctl("stop", "-m", "immediate") })
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
	return p
}

// Restart stops the cluster in mode ("fast": clients are disconnected and a
// checkpoint is written; "immediate": a crash, recovered from the WAL) and
// starts it again, waiting until it accepts connections.
func (p *PrivatePostgres) Restart(mode string) error {
	return p.pgctl("restart", "-m", mode)
}

// Stop stops the cluster in mode (see Restart); Start starts it again.
// Between the two the database is down for as long as the test likes.
func (p *PrivatePostgres) Stop(mode string) error { return p.pgctl("stop", "-m", mode) }

// Start starts a stopped cluster and waits until it accepts connections.
func (p *PrivatePostgres) Start() error { return p.pgctl("start") }

func (p *PrivatePostgres) pgctl(args ...string) error {
	return p.run("pg_ctl", append([]string{"-D", p.data, "-l", filepath.Join(p.dir, "postgres.log"), "-w", "-t", "60"}, args...)...)
}

func (p *PrivatePostgres) run(name string, args ...string) error {
	bin := os.Getenv("WARDEN_TEST_POSTGRES_BIN")
	if bin == "" {
		bin = PostgresBinDir
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}

// RequirePasswords makes TCP logins of every user but postgres
// authenticate with SCRAM-SHA-256 (postgres and the Unix socket stay
// trusted), and reloads the configuration. The reload is asynchronous:
// a test polls until a wrong password is refused.
func (p *PrivatePostgres) RequirePasswords() error {
	hba := "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(p.data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	if p.cred != nil {
		if err := os.Chown(filepath.Join(p.data, "pg_hba.conf"), int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return err
		}
	}
	return p.pgctl("reload")
}

// Log returns the server's log so far, for a failing test's message.
func (p *PrivatePostgres) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	return string(b)
}
