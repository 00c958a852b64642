// Package upstream is the inference gateway's HTTP/1.1 client transport to model
// providers. It is an http.RoundTripper that writes the request and reads the response
// on the caller's goroutine, over pooled keep-alive connections.
//
// net/http's Transport runs two goroutines per connection (persistConn's writeLoop and
// readLoop) and hands every request and response across them over channels. On a busy
// gateway each hand-off may wake an idle CPU, which on virtual machines costs several
// microseconds; Transport does no I/O of its own off the caller's goroutine. Requests
// and responses are still written and parsed by net/http itself (http.Request.Write and
// http.ReadResponse), so the wire format is the standard library's.
//
// What it does not do, by design: HTTP/2 (providers are spoken to over HTTP/1.1, one
// request per connection at a time), transparent gzip, and proxies (a request for which
// Proxy returns a proxy URL goes to Fallback, a net/http Transport, unchanged).
package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of the zero Transport's knobs.
const (
	DefaultMaxIdleConnsPerHost = 256
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultDialTimeout         = 30 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// idleProbeAfter is how long a connection may sit idle before it is checked for a
	// close by the server when taken from the pool (a non-blocking read). A busier
	// connection is used without the extra system call; a request that still finds it
	// closed is retried on a new connection (see RoundTrip).
	idleProbeAfter = time.Second
	bufferSize     = 4 << 10
)

// Transport is an http.RoundTripper for http and https URLs. The zero value is ready to
// use; it is safe for concurrent use. Fields must not change after first use.
type Transport struct {
	// DialContext dials TCP. Default: a net.Dialer with DefaultDialTimeout and keep-alive.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig is cloned for each TLS connection; ServerName defaults to the
	// request's host and NextProtos is always http/1.1.
	TLSClientConfig *tls.Config
	// TLSHandshakeTimeout bounds the handshake (the request's context bounds it too).
	TLSHandshakeTimeout time.Duration
	// MaxIdleConnsPerHost is how many idle connections a host keeps. Default 256.
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes connections idle for longer. Default 90s.
	IdleConnTimeout time.Duration
	// Proxy picks a proxy for a request, as http.Transport.Proxy does. Default
	// http.ProxyFromEnvironment. Requests that need one go to Fallback.
	Proxy func(*http.Request) (*url.URL, error)
	// Fallback serves requests this transport does not (proxied or other schemes).
	// Default: a clone of http.DefaultTransport.
	Fallback http.RoundTripper

	mu       sync.Mutex
	idle     map[string][]*conn
	fallback http.RoundTripper
	once     sync.Once
}

// conn is one pooled connection.
type conn struct {
	net.Conn
	key    string
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool
}

var errClosedIdle = errors.New("upstream: connection closed by the server while idle")

func (t *Transport) init() {
	t.once.Do(func() {
		t.fallback = t.Fallback
		if t.fallback == nil {
			t.fallback = http.DefaultTransport.(*http.Transport).Clone()
		}
	})
}

func (t *Transport) maxIdle() int {
	if t.MaxIdleConnsPerHost > 0 {
		return t.MaxIdleConnsPerHost
	}
	return DefaultMaxIdleConnsPerHost
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleConnTimeout > 0 {
		return t.IdleConnTimeout
	}
	return DefaultIdleConnTimeout
}

// RoundTrip implements http.RoundTripper. The response body reads from the connection
// on the reader's goroutine; reading it to io.EOF returns the connection to the pool,
// closing it early closes the connection. Cancelling the request's context aborts a
// dial, a write or a read in progress, the body's included.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	if req.URL == nil || req.URL.Host == "" || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return t.fallback.RoundTrip(req)
	}
	proxy := t.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	if u, err := proxy(req); err != nil {
		closeBody(req)
		return nil, err
	} else if u != nil {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	key := req.URL.Scheme + "://" + canonicalAddr(req.URL)
	for {
		c, err := t.get(ctx, key, req.URL)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := t.roundTrip(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		// A pooled connection the server closed while it was idle fails before any
		// byte of a response arrives; the server never saw the request, so it is sent
		// again on a fresh connection when its body can be replayed.
		if !c.reused || !errors.Is(err, errClosedIdle) || ctx.Err() != nil {
			closeBody(req)
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r2 := *req
			r2.Body = body
			req = &r2
		}
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// canonicalAddr is host:port with the scheme's default port filled in.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// roundTrip sends req on c and reads the response head. On error c is closed.
func (t *Transport) roundTrip(ctx context.Context, c *conn, req *http.Request) (*http.Response, error) {
	// A cancelled context unblocks any read or write on c at once. The body takes the
	// stop function over: the watch lasts until the response is read or closed.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.Close()
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, err
	}
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		// A reused connection the server has closed fails the write (reset, broken pipe).
		var op *net.OpError
		if c.reused && ctx.Err() == nil && errors.As(err, &op) && op.Op == "write" {
			err = fmt.Errorf("%w: %v", errClosedIdle, err)
		}
		return fail(err)
	}
	var resp *http.Response
	for {
		// The first byte tells a live connection from one the server closed while idle.
		if _, err := c.br.Peek(1); err != nil {
			if c.reused && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err)) {
				return fail(fmt.Errorf("%w: %v", errClosedIdle, err))
			}
			return fail(err)
		}
		r, err := http.ReadResponse(c.br, req)
		if err != nil {
			return fail(err)
		}
		// 1xx informational responses (other than 101) precede the real one.
		if r.StatusCode >= 100 && r.StatusCode < 200 && r.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		resp = r
		break
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("upstream: protocol upgrades are not supported"))
	}
	reuse := !resp.Close && !req.Close
	b := &body{t: t, c: c, ctx: ctx, stop: stop, src: resp.Body, reuse: reuse}
	if resp.Body == http.NoBody || resp.Body == nil || req.Method == http.MethodHead {
		b.finish(true)
		resp.Body = http.NoBody
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read" && !op.Timeout()
}

// ctxError is the error a read or write aborted by ctx reports: ctx.Err() (so
// errors.Is(err, context.Canceled) holds), naming the cause when one was given.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// body is a response body read on the caller's goroutine.
type body struct {
	t     *Transport
	c     *conn
	ctx   context.Context
	stop  func() bool
	src   io.ReadCloser
	reuse bool
	// state: 0 reading, 1 finished (connection released or closed).
	state atomic.Int32
	// detached: the context watch was stopped by Detach and reads are bounded by a
	// read deadline instead, which is cleared when the connection goes back to the pool.
	detached atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.state.Load() != 0 {
		return 0, errBodyClosed
	}
	n, err := b.src.Read(p)
	if err == nil {
		return n, nil
	}
	if errors.Is(err, io.EOF) {
		b.finish(true)
		return n, io.EOF
	}
	if b.state.Load() != 0 {
		return n, errBodyClosed
	}
	if b.ctx.Err() != nil && !b.detached.Load() {
		err = ctxError(b.ctx) // after Detach, a failed read is the read's own error
	}
	b.finish(false)
	return n, err
}

var errBodyClosed = errors.New("upstream: read on closed response body")

// Pending reports whether the next Read returns without waiting for the network:
// response bytes are buffered, already in the socket's receive queue, or the stream has
// ended. Stream writers ask it before flushing, so that what the provider has already
// sent goes out in one write instead of one per event. It does not read or block; it
// is false when it cannot tell (a TLS connection's decrypted buffer is not visible).
func (b *body) Pending() bool {
	if b.state.Load() != 0 {
		return true
	}
	if n := b.c.br.Buffered(); n > 0 {
		// The end of a chunk ("\r\n") may sit alone in the buffer after its data was
		// read: it is not the start of anything new.
		if p, _ := b.c.br.Peek(n); n > 2 || (string(p) != "\r\n" && string(p) != "\r" && string(p) != "\n") {
			return true
		}
	}
	st, ok := b.c.peek()
	return ok && st != sockIdle
}

// Close closes the connection unless the body was read to its end. It may be called
// from another goroutine while a Read is blocked: that Read returns an error.
func (b *body) Close() error {
	b.finish(false)
	return nil
}

// Detach ends the hold of the request's context on the rest of the body: reads are
// bounded by d from now instead, and a context that ends later no longer aborts them.
// A caller that reads the last bytes of a response off the request's path (the chunked
// terminator after a stream's final event) detaches first, so that the connection goes
// back to the pool even when the request's context ends before those bytes arrive.
// It reports false, and changes nothing, when the body is finished, already detached,
// or its context has already ended (the connection is then closed when the body is).
func (b *body) Detach(d time.Duration) bool {
	if b.state.Load() != 0 || !b.stop() {
		return false
	}
	// The deadline is set before detached is: a finish in between sees the watch
	// stopped and still attached, and closes the connection rather than pooling it
	// with a deadline set behind its back.
	b.c.SetReadDeadline(time.Now().Add(d))
	b.detached.Store(true)
	return true
}

// finish releases the connection once: back to the pool after a complete body (clean
// is true) on a keep-alive connection, else closed.
func (b *body) finish(clean bool) {
	if !b.state.CompareAndSwap(0, 1) {
		return
	}
	if b.detached.Load() {
		if clean && b.reuse && b.c.SetReadDeadline(time.Time{}) == nil {
			b.t.put(b.c)
			return
		}
		b.c.Close()
		return
	}
	// stop reports false when the cancel watch already fired: the connection's
	// deadline was set, so it cannot be reused.
	if b.stop() && clean && b.reuse {
		b.t.put(b.c)
		return
	}
	b.c.Close()
}

// get returns an idle connection for key or dials one.
func (t *Transport) get(ctx context.Context, key string, u *url.URL) (*conn, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		list := t.idle[key]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[key] = list[:len(list)-1]
		t.mu.Unlock()
		idleFor := now.Sub(c.idleAt)
		if idleFor > t.idleTimeout() || (idleFor > idleProbeAfter && !alive(c)) {
			c.Close()
			continue
		}
		c.reused = true
		return c, nil
	}
	return t.dial(ctx, key, u)
}

// alive reports whether an idle connection is still open: a look at its socket finds
// neither data nor an end of stream.
func alive(c *conn) bool {
	if c.br.Buffered() > 0 {
		return false // bytes nobody asked for: the connection is out of step
	}
	st, ok := c.peek()
	return !ok || st == sockIdle
}

// peek looks at c's socket without reading or waiting. ok is false when it cannot (a
// connection without a file descriptor, or a platform without the call).
func (c *conn) peek() (st sockState, ok bool) {
	nc := c.Conn
	if tc, isTLS := nc.(*tls.Conn); isTLS {
		nc = tc.NetConn()
	}
	sc, isSys := nc.(syscall.Conn)
	if !isSys {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return sockClosed, true
	}
	rerr := rc.Read(func(fd uintptr) bool {
		st, ok = peekSocket(fd)
		return true // never wait
	})
	if rerr != nil {
		return sockClosed, true
	}
	return st, ok
}

// sockState is what a look at a socket found.
type sockState int

const (
	sockIdle   sockState = iota // nothing to read: a read would wait
	sockReady                   // bytes are waiting
	sockClosed                  // end of stream or an error: a read returns at once
)

func (t *Transport) dial(ctx context.Context, key string, u *url.URL) (*conn, error) {
	addr := canonicalAddr(u)
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "https" {
		cfg := &tls.Config{}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		timeout := t.TLSHandshakeTimeout
		if timeout <= 0 {
			timeout = DefaultTLSHandshakeTimeout
		}
		hctx, cancel := context.WithTimeout(ctx, timeout)
		tc := tls.Client(nc, cfg)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &conn{Conn: nc, key: key, br: bufio.NewReaderSize(nc, bufferSize), bw: bufio.NewWriterSize(nc, bufferSize)}, nil
}

// put returns a connection whose response was read to its end to the pool.
func (t *Transport) put(c *conn) {
	if c.br.Buffered() > 0 {
		c.Close() // the server sent more than one response's worth
		return
	}
	c.idleAt = time.Now()
	t.mu.Lock()
	if t.idle == nil {
		t.idle = map[string][]*conn{}
	}
	list := t.idle[c.key]
	if len(list) >= t.maxIdle() {
		t.mu.Unlock()
		c.Close()
		return
	}
	t.idle[c.key] = append(list, c)
	t.mu.Unlock()
}

// CloseIdleConnections closes the pooled connections (http.Client calls it too).
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.Close()
		}
	}
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// IdleConns is the number of pooled connections (for tests and metrics).
func (t *Transport) IdleConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, list := range t.idle {
		n += len(list)
	}
	return n
}
