// Package egress is the worker's network exit for sandboxed tools: an HTTP
// CONNECT proxy served on a Unix socket per tool call. The sandbox has no
// network of its own; when a policy grants host:port pairs for a call, the
// socket is bound into that call's sandbox and the proxy opens a TCP tunnel
// to exactly those pairs, refusing anything else. Every connection, allowed
// or refused, is reported to the worker's callback (for the audit log).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SocketName is the file name of a grant's socket inside its directory.
const SocketName = "egress.sock"

// Connection is one tunnel the proxy opened or refused.
type Connection struct {
	// Call identifies the tool call the grant was made for.
	Call string `json:"call"`
	// Target is the host:port the tool asked for.
	Target  string `json:"target"`
	Allowed bool   `json:"allowed"`
	// Reason says why a connection was refused, or why it ended in error.
	Reason string    `json:"reason,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// BytesUp went from the tool to the target, BytesDown back.
	BytesUp   int64 `json:"bytes_up"`
	BytesDown int64 `json:"bytes_down"`
	// Address is the IP address and port dialed (or refused) for Target.
	Address string `json:"address,omitempty"`
}

// Options configure a Proxy.
type Options struct {
	// Log receives every connection when it ends (refused ones at once).
	// It must be safe for concurrent use. Nil discards.
	Log func(Connection)
	// Dir is where grant directories are created. Empty means os.TempDir().
	Dir string
	// DialTimeout bounds the TCP connect to a target. Default 10s.
	DialTimeout time.Duration
	// Dial opens the TCP connection to a target; nil means a net.Dialer
	// whose Control refuses every address RefusedAddress names unless the
	// grant names that IP literal itself. A Dial of the caller's own must
	// apply the same check (CheckDialAddress); the proxy also refuses a
	// tunnel whose connected remote address is such an address.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxTunnels caps the connections one grant serves at once (header
	// still being read included); more are refused at once. Default 32.
	MaxTunnels int
	// HeaderTimeout bounds the time a tool has to send its CONNECT
	// request. Default 5s.
	HeaderTimeout time.Duration
	// MaxBytes caps the bytes one grant carries, both directions and all
	// tunnels together; a tunnel that reaches it is closed. Default 256 MiB.
	MaxBytes int64
}

// Defaults of Options.
const (
	DefaultMaxTunnels    = 32
	DefaultHeaderTimeout = 5 * time.Second
	DefaultMaxBytes      = 256 << 20
)

// Proxy serves grants. It is safe for concurrent use.
type Proxy struct {
	opts Options
}

// New returns a Proxy.
func New(opts Options) *Proxy {
	if opts.Log == nil {
		opts.Log = func(Connection) {}
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.Dial == nil {
		d := &net.Dialer{Timeout: opts.DialTimeout, ControlContext: checkControl}
		opts.Dial = d.DialContext
	}
	if opts.MaxTunnels <= 0 {
		opts.MaxTunnels = DefaultMaxTunnels
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = DefaultHeaderTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	return &Proxy{opts: opts}
}

// NormalizeHosts checks host:port pairs and returns them lower-cased, so
// "Example.COM:443" and "example.com:443" are one grant.
func NormalizeHosts(hosts []string) ([]string, error) {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			return nil, fmt.Errorf("granted host %q: want host:port: %w", h, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || host == "" || strings.ContainsAny(host, "/ \t\r\n") {
			return nil, fmt.Errorf("granted host %q: want host:port with a port in 1-65535", h)
		}
		out = append(out, net.JoinHostPort(strings.ToLower(host), strconv.Itoa(n)))
	}
	return out, nil
}

// Grant opens a Unix socket that tunnels to exactly hosts (host:port
// pairs) for one call. It returns the socket's directory (bind it into the
// sandbox; the socket is SocketName inside) and a function that closes the
// socket, ends every open tunnel and removes the directory.
func (p *Proxy) Grant(ctx context.Context, call string, hosts []string) (dir string, closeGrant func(), err error) {
	allowed, err := NormalizeHosts(hosts)
	if err != nil {
		return "", nil, err
	}
	if len(allowed) == 0 {
		return "", nil, errors.New("egress grant without hosts")
	}
	dir, err = os.MkdirTemp(p.opts.Dir, "warden-egress-")
	if err != nil {
		return "", nil, fmt.Errorf("egress: %w", err)
	}
	path := filepath.Join(dir, SocketName)
	l, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("egress: %w", err)
	}
	// Only the worker's uid may connect. The sandbox reaches the socket as
	// that uid: its root maps onto the worker's uid through the id-mapped
	// bind (worker as root) or is that uid (worker not root).
	if err := errors.Join(os.Chmod(dir, 0o700), os.Chmod(path, 0o600)); err != nil {
		l.Close()
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("egress: %w", err)
	}
	g := &grant{p: p, call: call, allowed: map[string]bool{}, conns: map[net.Conn]struct{}{}}
	for _, h := range allowed {
		g.allowed[h] = true
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.ctx = ctx
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.serve(l)
	}()
	var once sync.Once
	return dir, func() {
		once.Do(func() {
			cancel()
			l.Close()
			g.closeAll()
			<-done
			g.wg.Wait()
			os.RemoveAll(dir)
		})
	}, nil
}
