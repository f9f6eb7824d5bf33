// Serving one grant: accepting the tool's connections and tunnelling each CONNECT to its granted target.

package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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
