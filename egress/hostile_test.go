package egress_test

// Hostile tests of the proxy (issue 19, class 6): names that resolve to
// the worker's own addresses, floods of half-open CONNECTs, and tunnels
// that would carry without end.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/egress"
)

// TestHostileEgressLoopbackByName: a granted name that resolves to a
// loopback address does not reach the worker's loopback services; the
// refusal is logged with the address.
func TestHostileEgressLoopbackByName(t *testing.T) {
	t.Parallel()
	var reached atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(true)
		fmt.Fprint(w, "loopback service")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	var sink logSink
	p := egress.New(egress.Options{Log: sink.log})
	target := fmt.Sprintf("localhost:%d", port)
	dir, closeGrant, err := p.Grant(context.Background(), "c", []string{target})
	require.NoError(t, err)
	defer closeGrant()
	_, err = client(filepath.Join(dir, egress.SocketName)).Get("http://" + target + "/")
	require.Error(t, err)
	require.False(t, reached.Load(), "the loopback service was reached through a granted name")
	// The proxy logs right after it replies.
	require.Eventually(t, func() bool { return len(sink.all()) == 1 }, 2*time.Second, 5*time.Millisecond)
	logs := sink.all()
	require.False(t, logs[0].Allowed)
	require.Contains(t, logs[0].Reason, "loopback")
	require.Contains(t, logs[0].Reason, "127.0.0.1")
	require.Equal(t, target, logs[0].Target)
}

// TestHostileEgressHostsFileName: any name /etc/hosts maps to loopback
// is refused like localhost.
func TestHostileEgressHostsFileName(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("/etc/hosts")
	require.NoError(t, err)
	var name string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[0], "127.") && f[1] != "localhost" && !strings.HasPrefix(f[1], "#") {
			name = f[1]
			break
		}
	}
	if name == "" {
		t.Skip("no other loopback name in /etc/hosts")
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	defer l.Close()
	var accepted atomic.Bool
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Store(true)
			c.Close()
		}
	}()
	p := egress.New(egress.Options{})
	target := net.JoinHostPort(name, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	dir, closeGrant, err := p.Grant(context.Background(), "c", []string{target})
	require.NoError(t, err)
	defer closeGrant()
	_, err = egress.DialVia(context.Background(), filepath.Join(dir, egress.SocketName), target)
	require.ErrorContains(t, err, "address not allowed")
	require.False(t, accepted.Load())
}

// TestHostileEgressLiteralGrant: a grant that names the IP literal itself
// is the operator's explicit choice and is served.
func TestHostileEgressLiteralGrant(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	p := egress.New(egress.Options{})
	dir, closeGrant, err := p.Grant(context.Background(), "c", []string{srv.Listener.Addr().String()})
	require.NoError(t, err)
	defer closeGrant()
	resp, err := client(filepath.Join(dir, egress.SocketName)).Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "ok", string(body))
}

// TestHostileEgressAddressClasses: every class of address a name could
// resolve to that reaches the worker, its network or the cloud's metadata
// service is refused; public addresses are not.
func TestHostileEgressAddressClasses(t *testing.T) {
	t.Parallel()
	refused := map[string]string{
		"127.0.0.1": "loopback", "127.8.9.10": "loopback", "::1": "loopback",
		"::ffff:127.0.0.1": "loopback", "0.0.0.0": "unspecified", "::": "unspecified",
		"10.1.2.3": "private", "172.16.0.1": "private", "172.31.255.255": "private", "192.168.1.1": "private",
		"fc00::1": "private", "fd12:3456::1": "private", "100.64.0.1": "shared",
		"169.254.169.254": "link-local", "169.254.0.1": "link-local", "fe80::1": "link-local",
		"fd00:ec2::254": "private", "224.0.0.1": "multicast", "ff02::1": "multicast",
		"255.255.255.255": "broadcast", "192.0.0.8": "reserved", "240.0.0.1": "reserved",
		"::ffff:10.0.0.1": "private", "64:ff9b::a00:1": "private", "64:ff9b::7f00:1": "loopback",
	}
	for s, class := range refused {
		got, ok := egress.RefusedAddress(netip.MustParseAddr(s))
		require.True(t, ok, "%s must be refused", s)
		require.Equal(t, class, got, s)
	}
	for _, s := range []string{"1.1.1.1", "8.8.8.8", "93.184.216.34", "172.32.0.1", "2606:4700::1111", "100.128.0.1", "64:ff9b::101:101"} {
		class, ok := egress.RefusedAddress(netip.MustParseAddr(s))
		require.False(t, ok, "%s refused as %s", s, class)
	}
}

// TestHostileEgressHalfOpenFlood: one call opening hundreds of CONNECTs
// that never send a header holds at most MaxTunnels of them, each only
// for HeaderTimeout.
func TestHostileEgressHalfOpenFlood(t *testing.T) {
	t.Parallel()
	var sink logSink
	p := egress.New(egress.Options{Log: sink.log, MaxTunnels: 8, HeaderTimeout: 400 * time.Millisecond})
	dir, closeGrant, err := p.Grant(context.Background(), "c", []string{"example.com:443"})
	require.NoError(t, err)
	defer closeGrant()
	sock := filepath.Join(dir, egress.SocketName)
	var conns []net.Conn
	for range 200 {
		c, err := net.Dial("unix", sock)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	held := 0
	buf := make([]byte, 512)
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			held++
		}
	}
	require.LessOrEqual(t, held, 8, "the proxy held %d half-open connections", held)
	// The held ones end at the header timeout.
	deadline := time.Now().Add(2 * time.Second)
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		for {
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				require.False(t, errors.As(err, &ne) && ne.Timeout(), "a half-open connection outlived the header timeout")
				break
			}
		}
	}
	var tooMany int
	for _, l := range sink.all() {
		if strings.Contains(l.Reason, "too many connections") {
			tooMany++
		}
	}
	require.GreaterOrEqual(t, tooMany, 150)
}

// TestHostileEgressByteCap: a grant carries at most MaxBytes; the tunnel
// ends there and the log says why.
func TestHostileEgressByteCap(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 4<<20))
	}))
	defer srv.Close()
	var sink logSink
	p := egress.New(egress.Options{Log: sink.log, MaxBytes: 64 << 10})
	dir, closeGrant, err := p.Grant(context.Background(), "c", []string{srv.Listener.Addr().String()})
	require.NoError(t, err)
	defer closeGrant()
	resp, err := client(filepath.Join(dir, egress.SocketName)).Get(srv.URL)
	if err == nil {
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Less(t, n, int64(128<<10))
	}
	require.Eventually(t, func() bool {
		for _, l := range sink.all() {
			if strings.Contains(l.Reason, "byte limit") && l.BytesDown <= 128<<10 {
				return true
			}
		}
		return false
	}, 3*time.Second, 20*time.Millisecond, "%+v", sink.all())
}
