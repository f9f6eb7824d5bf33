package egress_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/egress"
)

type logSink struct {
	mu    sync.Mutex
	conns []egress.Connection
}

func (l *logSink) log(c egress.Connection) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns = append(l.conns, c)
}

func (l *logSink) all() []egress.Connection {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]egress.Connection(nil), l.conns...)
}

func client(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return egress.DialVia(ctx, sock, addr)
		},
	}, Timeout: 5 * time.Second}
}

func TestGrantedHostOnly(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello through the proxy")
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the ungranted server was reached")
	}))
	defer other.Close()

	var sink logSink
	p := egress.New(egress.Options{Log: sink.log})
	granted := srv.Listener.Addr().String()
	dir, closeGrant, err := p.Grant(context.Background(), "wf-1/1/call-1", []string{granted})
	require.NoError(t, err)
	sock := filepath.Join(dir, egress.SocketName)

	resp, err := client(sock).Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "hello through the proxy", string(body))

	_, err = client(sock).Get(other.URL)
	require.ErrorContains(t, err, "403 Forbidden")
	_, err = egress.DialVia(context.Background(), sock, "LOCALHOST:"+fmt.Sprint(other.Listener.Addr().(*net.TCPAddr).Port))
	require.ErrorContains(t, err, "host not granted")

	closeGrant()
	require.NoDirExists(t, dir)
	_, err = egress.DialVia(context.Background(), sock, granted)
	require.Error(t, err)

	logs := sink.all()
	require.Len(t, logs, 3)
	byTarget := map[string]egress.Connection{}
	for _, c := range logs {
		require.Equal(t, "wf-1/1/call-1", c.Call)
		byTarget[c.Target] = c
	}
	ok := byTarget[granted]
	require.True(t, ok.Allowed)
	require.Positive(t, ok.BytesUp)
	require.Positive(t, ok.BytesDown)
	require.Empty(t, ok.Reason)
	refused := byTarget[other.Listener.Addr().String()]
	require.False(t, refused.Allowed)
	require.Contains(t, refused.Reason, "not granted")
}

func TestOnlyConnect(t *testing.T) {
	t.Parallel()
	var sink logSink
	p := egress.New(egress.Options{Log: sink.log})
	dir, closeGrant, err := p.Grant(context.Background(), "c", []string{"example.com:443"})
	require.NoError(t, err)
	defer closeGrant()
	c, err := net.Dial("unix", filepath.Join(dir, egress.SocketName))
	require.NoError(t, err)
	fmt.Fprint(c, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
	resp, err := http.ReadResponse(bufioReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	c.Close()
}

func TestNormalizeHosts(t *testing.T) {
	t.Parallel()
	got, err := egress.NormalizeHosts([]string{"Example.COM:443", "[::1]:8080"})
	require.NoError(t, err)
	require.Equal(t, []string{"example.com:443", "[::1]:8080"}, got)
	for _, bad := range []string{"example.com", ":443", "a:0", "a:70000", "a:x", "a b:1"} {
		_, err := egress.NormalizeHosts([]string{bad})
		require.Error(t, err, bad)
	}
	_, _, err = egress.New(egress.Options{}).Grant(context.Background(), "c", nil)
	require.Error(t, err)
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
