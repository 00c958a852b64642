package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is an httptest server that counts the TCP connections it accepted.
type server struct {
	*httptest.Server
	conns atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T) (*http.Client, *Transport) {
	tr := &Transport{Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, tr
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoundTripAndReuse(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.Path, r.Header.Get("X-Test"), body)
	})
	client, tr := newClient(t)
	for i := range 10 {
		q := ""
		if i%2 == 1 {
			q = "?chunked=1"
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/a/b"+q, strings.NewReader(fmt.Sprint("body", i)))
		req.Header.Set("X-Test", "yes")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Method") != "POST" {
			t.Fatalf("status %d header %v", resp.StatusCode, resp.Header)
		}
		if got, want := readAll(t, resp), fmt.Sprint("POST /a/b yes body", i); got != want {
			t.Fatalf("body %q, want %q", got, want)
		}
		if n := tr.IdleConns(); n != 1 {
			t.Fatalf("after a complete body: %d idle connections, want 1", n)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 sequential requests, want 1", n)
	}
	// Bodiless responses release the connection at once.
	resp, err := client.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := srv.conns.Load(); n != 1 || tr.IdleConns() != 1 {
		t.Errorf("HEAD: %d connections, %d idle", n, tr.IdleConns())
	}
}

func TestEarlyCloseDoesNotReuse(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		for range 100 {
			io.WriteString(w, strings.Repeat("x", 1000))
			w.(http.Flusher).Flush()
		}
	})
	client, tr := newClient(t)
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(buf); err == nil {
		t.Error("read after Close succeeded")
	}
	if tr.IdleConns() != 0 {
		t.Error("a half-read connection went back to the pool")
	}
	if got := readAll(t, must(client.Get(srv.URL))); len(got) != 100000 {
		t.Errorf("second body %d bytes", len(got))
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the half-read one is not reused)", n)
	}
}

func must(resp *http.Response, err error) *http.Response {
	if err != nil {
		panic(err)
	}
	return resp
}

// slowStream sends one line, then holds the response open until the request ends.
func slowStream(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "first\n")
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// getFirstLine sends a GET with ctx and reads the body's first line, which must be
// "first".
func getFirstLine(t *testing.T, client *http.Client, ctx context.Context, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	return resp, br
}

func TestCancelMidStream(t *testing.T) {
	srv := newServer(t, slowStream)
	client, tr := newClient(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	resp, br := getFirstLine(t, client, ctx, srv.URL)
	cause := errors.New("caller gave up")
	go cancel(cause)
	_, err := br.ReadString('\n') // blocked until the cancel lands
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("read after cancel: %v, want context.Canceled and the cause", err)
	}
	resp.Body.Close()
	if tr.IdleConns() != 0 {
		t.Error("a cancelled connection went back to the pool")
	}
}

// TestDetach checks that a detached body outlives its request's context: the rest is
// read after a cancel, the connection goes back to the pool without the detach's read
// deadline, and serves the next request after that deadline has passed. A body whose
// context already ended cannot be detached.
func TestDetach(t *testing.T) {
	release := make(chan struct{}, 2)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		if r.URL.Query().Get("hold") != "" {
			<-release
		}
		io.WriteString(w, "last\n")
	})
	client, tr := newClient(t)
	get := func(ctx context.Context, q string) (*http.Response, *bufio.Reader) {
		return getFirstLine(t, client, ctx, srv.URL+q)
	}

	ctx, cancel := context.WithCancel(context.Background())
	resp, br := get(ctx, "?hold=1")
	if !resp.Body.(interface{ Detach(time.Duration) bool }).Detach(50 * time.Millisecond) {
		t.Fatal("Detach refused on a live body")
	}
	cancel()
	release <- struct{}{}
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "last\n" {
		t.Fatalf("rest after cancel: %q, %v", rest, err)
	}
	resp.Body.Close()
	if tr.IdleConns() != 1 {
		t.Fatalf("%d idle connections after a detached body was read to its end, want 1", tr.IdleConns())
	}
	time.Sleep(100 * time.Millisecond) // past the detach's deadline
	resp, br = get(context.Background(), "")
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "last\n" {
		t.Fatalf("next request on the pooled connection: %q, %v", rest, err)
	}
	resp.Body.Close()
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}

	ctx, cancel = context.WithCancel(context.Background())
	resp, _ = get(ctx, "?hold=1")
	cancel() // the watch has started once cancel returns
	release <- struct{}{}
	if resp.Body.(interface{ Detach(time.Duration) bool }).Detach(time.Second) {
		t.Error("Detach accepted after the context ended")
	}
	resp.Body.Close()
	if tr.IdleConns() != 0 {
		t.Error("a cancelled connection went back to the pool")
	}
}

func TestCloseFromAnotherGoroutineUnblocksRead(t *testing.T) {
	srv := newServer(t, slowStream)
	client, _ := newClient(t)
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := resp.Body.Read(buf)
		done <- err
	}()
	resp.Body.Close()
	if err := <-done; err == nil || errors.Is(err, io.EOF) {
		t.Errorf("blocked read after Close: %v, want an error", err)
	}
}

func TestCancelBeforeHeadersAndTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	client, _ := newClient(t)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("x"))
	go cancel()
	if _, err := client.Do(req); !errors.Is(err, context.Canceled) {
		t.Errorf("cancel before headers: %v", err)
	}

	ctx, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if _, err := client.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline before headers: %v", err)
	}
}

func TestUpstreamClosesMidBody(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is closed without the chunked end
	})
	client, tr := newClient(t)
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "partial" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %q, %v; want the partial body and io.ErrUnexpectedEOF", b, err)
	}
	if tr.IdleConns() != 0 {
		t.Error("a broken connection went back to the pool")
	}
}

// TestServerClosedIdleConnection: a server that drops a keep-alive connection after a
// response (without saying Connection: close) makes the next request on it fail before
// any response byte; the transport sends it again, body included, on a new connection.
func TestServerClosedIdleConnection(t *testing.T) {
	var mu sync.Mutex
	var conns []net.Conn
	var bodies []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		c, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		conns = append(conns, c) // before the reply: the client acts on it at once
		mu.Unlock()
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		bw.Flush()
	})
	client, _ := newClient(t)
	post := func(body string) string {
		resp, err := client.Post(srv.URL, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return readAll(t, resp)
	}
	if got := post("one"); got != "ok" {
		t.Fatalf("first: %q", got)
	}
	mu.Lock()
	conns[0].Close() // the server drops the now idle connection
	mu.Unlock()
	if got := post("two"); got != "ok" {
		t.Fatalf("second: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(bodies) != "[one two]" {
		t.Errorf("server saw %q", bodies)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestIdleProbe: a connection idle for a while is checked before use; one the server
// closed is dropped instead of being written to.
func TestIdleProbe(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	client, tr := newClient(t)
	readAll(t, must(client.Get(srv.URL)))
	tr.mu.Lock()
	var c *conn
	for _, list := range tr.idle {
		c = list[0]
	}
	tr.mu.Unlock()
	if !alive(c) {
		t.Fatal("an open idle connection probed as closed")
	}
	srv.CloseClientConnections()
	for i := 0; alive(c); i++ { // the FIN arrives asynchronously
		if i > 1000 {
			t.Fatal("a closed connection still probes as open")
		}
		time.Sleep(time.Millisecond)
	}
	c.idleAt = time.Now().Add(-2 * idleProbeAfter)
	if got := readAll(t, must(client.Get(srv.URL))); got != "ok" {
		t.Errorf("body %q", got)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestLargeBodies(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set("X-Len", fmt.Sprint(n))
		// Echo a large streamed (chunked) body back.
		for i := range 2000 {
			fmt.Fprintf(w, "%05d%s\n", i, strings.Repeat("y", 4000))
		}
	})
	client, tr := newClient(t)
	in := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	for range 2 {
		resp, err := client.Post(srv.URL, "application/octet-stream", bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(in)
		if resp.Header.Get("X-Sum") != fmt.Sprintf("%x", want) || resp.Header.Get("X-Len") != fmt.Sprint(len(in)) {
			t.Errorf("request body arrived as %s bytes, sum %s", resp.Header.Get("X-Len"), resp.Header.Get("X-Sum"))
		}
		out := readAll(t, resp)
		if len(out) != 2000*4006 || !strings.HasPrefix(out[len(out)-4006:], "01999y") {
			t.Errorf("response body %d bytes", len(out))
		}
		if tr.IdleConns() != 1 {
			t.Errorf("%d idle connections after a large exchange", tr.IdleConns())
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestConnectionCloseIsNotPooled(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	client, tr := newClient(t)
	for range 3 {
		if got := readAll(t, must(client.Get(srv.URL))); got != "bye" {
			t.Fatalf("body %q", got)
		}
	}
	if tr.IdleConns() != 0 || srv.conns.Load() != 3 {
		t.Errorf("%d idle, %d connections; want 0 and 3", tr.IdleConns(), srv.conns.Load())
	}
}

func TestInformationalResponsesSkipped(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</x>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "made")
	})
	client, _ := newClient(t)
	resp := must(client.Get(srv.URL))
	if resp.StatusCode != http.StatusCreated || readAll(t, resp) != "made" {
		t.Errorf("status %d", resp.StatusCode)
	}
}

type recordingRT struct{ n atomic.Int64 }

func (r *recordingRT) RoundTrip(*http.Request) (*http.Response, error) {
	r.n.Add(1)
	return &http.Response{StatusCode: 299, Body: http.NoBody, Header: http.Header{}}, nil
}

func TestProxiedRequestsGoToFallback(t *testing.T) {
	fb := &recordingRT{}
	proxy, _ := url.Parse("http://proxy.invalid:3128")
	tr := &Transport{Fallback: fb, Proxy: func(*http.Request) (*url.URL, error) { return proxy, nil }}
	resp, err := (&http.Client{Transport: tr}).Get("http://provider.invalid/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 299 || fb.n.Load() != 1 {
		t.Errorf("status %d, fallback calls %d", resp.StatusCode, fb.n.Load())
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %v", r.Proto, r.TLS != nil)
	}))
	srv.EnableHTTP2 = true // the transport still speaks HTTP/1.1
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	tr := &Transport{Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
		TLSClientConfig: &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for range 3 {
		if got := readAll(t, must(client.Get(srv.URL))); got != "HTTP/1.1 true" {
			t.Fatalf("body %q", got)
		}
	}
	if conns.Load() != 1 {
		t.Errorf("%d TLS connections, want 1", conns.Load())
	}
}

func TestConcurrentRequests(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	client, tr := newClient(t)
	tr.MaxIdleConnsPerHost = 4
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				want := fmt.Sprint(g, "-", i)
				resp, err := client.Post(srv.URL, "text/plain", strings.NewReader(want))
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != want {
					t.Errorf("got %q, %v; want %q", b, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := tr.IdleConns(); n > 4 {
		t.Errorf("%d idle connections over MaxIdleConnsPerHost 4", n)
	}
}

func TestDialError(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	client, _ := newClient(t)
	if _, err := client.Get("http://" + addr); err == nil {
		t.Error("a request to a closed port succeeded")
	}
}

func TestPending(t *testing.T) {
	next := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "second\n")
		w.(http.Flusher).Flush()
		<-next
	})
	client, _ := newClient(t)
	resp := must(client.Get(srv.URL))
	defer resp.Body.Close()
	pending := resp.Body.(interface{ Pending() bool })
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first\n" {
		t.Fatalf("%q, %v", buf, err)
	}
	// Only the first chunk's "\r\n" may be buffered: nothing new has been sent.
	if pending.Pending() {
		t.Fatal("Pending with nothing sent after the first chunk")
	}
	next <- struct{}{}
	for i := 0; !pending.Pending(); i++ { // the bytes arrive asynchronously
		if i > 10000 {
			t.Fatal("Pending never saw the second chunk")
		}
		time.Sleep(100 * time.Microsecond)
	}
	buf = make([]byte, 7)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "second\n" {
		t.Fatalf("%q, %v", buf, err)
	}
	if pending.Pending() {
		t.Fatal("Pending before the end was sent")
	}
	close(next)
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 0 {
		t.Fatalf("%q, %v", b, err)
	}
	if !pending.Pending() {
		t.Error("a finished body is not Pending (a Read returns at once)")
	}
}
