// Package egress is the worker's network exit for sandboxed tools: an HTTP
// CONNECT proxy served on a Unix socket per tool call. The sandbox has no
// network of its own; when a policy grants host:port pairs for a call, the
// socket is bound into that call's sandbox and the proxy opens a TCP tunnel
// to exactly those pairs, refusing anything else. Every connection, allowed
// or refused, is reported to the worker's callback (for the audit log).
package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

type grant struct {
	p       *Proxy
	call    string
	allowed map[string]bool
	ctx     context.Context
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	// clients counts the tool's connections being served; bytes what the
	// grant carried.
	clients atomic.Int64
	bytes   atomic.Int64
}

func (g *grant) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *grant) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

func (g *grant) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
}

func (g *grant) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if !g.track(c) {
			c.Close()
			return
		}
		if g.clients.Add(1) > int64(g.p.opts.MaxTunnels) {
			g.clients.Add(-1)
			g.untrack(c)
			now := time.Now()
			g.p.opts.Log(Connection{Call: g.call, Start: now, End: now,
				Reason: fmt.Sprintf("too many connections: the grant serves %d at once", g.p.opts.MaxTunnels)})
			c.Close()
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer g.clients.Add(-1)
			defer g.untrack(c)
			defer c.Close()
			g.handle(c)
		}()
	}
}

// maxRequestHeader bounds the CONNECT request a tool sends.
const maxRequestHeader = 16 << 10

func (g *grant) handle(c net.Conn) {
	rec := Connection{Call: g.call, Start: time.Now()}
	finish := func(reason string) {
		rec.End = time.Now()
		rec.Reason = reason
		g.p.opts.Log(rec)
	}
	_ = c.SetReadDeadline(time.Now().Add(g.p.opts.HeaderTimeout))
	br := bufio.NewReader(io.LimitReader(c, maxRequestHeader))
	req, err := http.ReadRequest(br)
	if err != nil {
		finish("malformed request: " + err.Error())
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		rec.Target = req.Host
		reply(c, http.StatusMethodNotAllowed, "only CONNECT is served")
		finish("method " + req.Method + " refused: only CONNECT is served")
		return
	}
	rec.Target = req.Host
	target, err := NormalizeHosts([]string{req.Host})
	if err != nil || !g.allowed[target[0]] {
		reply(c, http.StatusForbidden, "host not granted by policy")
		finish("host not granted by policy for this call")
		return
	}
	rec.Target = target[0]
	dctx, cancel := context.WithTimeout(withTarget(g.ctx, target[0]), g.p.opts.DialTimeout)
	up, err := g.p.opts.Dial(dctx, "tcp", target[0])
	cancel()
	var refusedErr *AddressError
	if errors.As(err, &refusedErr) {
		rec.Address = refusedErr.Address
		reply(c, http.StatusForbidden, "address not allowed: "+refusedErr.Error())
		finish("refused: " + refusedErr.Error())
		return
	}
	if err != nil {
		reply(c, http.StatusBadGateway, "connect failed")
		rec.Allowed = true
		finish("dial: " + err.Error())
		return
	}
	rec.Address = up.RemoteAddr().String()
	if err := CheckDialAddress(target[0], rec.Address); err != nil {
		// A Dial of the caller's own connected somewhere it must not.
		up.Close()
		reply(c, http.StatusForbidden, "address not allowed: "+err.Error())
		finish("refused: " + err.Error())
		return
	}
	if !g.track(up) {
		up.Close()
		return
	}
	defer g.untrack(up)
	defer up.Close()
	rec.Allowed = true
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		finish("reply: " + err.Error())
		return
	}
	var upBytes, downBytes atomic.Int64
	var overLimit atomic.Bool
	done := make(chan struct{}, 2)
	// copyCapped copies until EOF or the grant's byte limit, which closes
	// both ends.
	copyCapped := func(dst io.Writer, src io.Reader) int64 {
		var n int64
		buf := make([]byte, 32<<10)
		for {
			k, rerr := src.Read(buf)
			if k > 0 {
				if g.bytes.Add(int64(k)) > g.p.opts.MaxBytes {
					overLimit.Store(true)
					c.Close()
					up.Close()
					return n
				}
				w, werr := dst.Write(buf[:k])
				n += int64(w)
				if werr != nil {
					return n
				}
			}
			if rerr != nil {
				return n
			}
		}
	}
	go func() {
		// Bytes the tool sent after the request header, then the rest.
		n := copyCapped(up, io.MultiReader(buffered(br), c))
		upBytes.Store(n)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		n := copyCapped(c, up)
		downBytes.Store(n)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
	rec.BytesUp, rec.BytesDown = upBytes.Load(), downBytes.Load()
	if overLimit.Load() {
		finish(fmt.Sprintf("byte limit: the grant carries at most %d bytes", g.p.opts.MaxBytes))
		return
	}
	finish("")
}

// buffered returns what br already read past the request.
func buffered(br *bufio.Reader) io.Reader {
	n := br.Buffered()
	if n == 0 {
		return strings.NewReader("")
	}
	b, _ := br.Peek(n)
	return strings.NewReader(string(b))
}

func reply(c net.Conn, code int, msg string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		code, http.StatusText(code), len(msg), msg)
}

// DialVia opens a tunnel to addr (host:port) through the proxy socket at
// socketPath: the client side, used by tools inside the sandbox.
func DialVia(ctx context.Context, socketPath, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.Close()
		return nil, fmt.Errorf("egress proxy refused %s: %s: %s", addr, resp.Status, strings.TrimSpace(string(body)))
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &prefixConn{Conn: c, r: io.MultiReader(buffered(br), c)}, nil
	}
	return c, nil
}

type prefixConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }
