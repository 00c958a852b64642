package mxp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestCallConcurrentOverSecureTransport(t *testing.T) {
	before := runtime.NumGoroutine()
	defer func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("%d goroutines outlived Close", n-before)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sk, _ := GeneratePrivateKey()
	ck, _ := GeneratePrivateKey()
	l, err := Listen(ctx, "127.0.0.1:0", Options{PrivateKey: sk, AllowPeers: []PublicKey{ck.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		s, err := l.Accept(ctx)
		if err != nil {
			served <- err
			return
		}
		defer s.Close()
		if s.PeerKey() != ck.PublicKey() {
			served <- fmt.Errorf("peer key %v", s.PeerKey())
			return
		}
		served <- s.Serve(ctx, func(ctx context.Context, f Frame) *Frame {
			if string(f.Payload) == "fail" {
				return &Frame{Type: TypeError, Payload: []byte(`{"error":"asked to fail","code":"bad_request"}`)}
			}
			return Echo(ctx, f)
		})
	}()
	c, err := Dial(ctx, l.Addr().String(), Options{PrivateKey: ck, ServerKey: l.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				p := []byte(fmt.Sprintf("call %d/%d", g, i))
				r, err := c.Call(ctx, &Frame{Type: TypeCall, Payload: p})
				if err != nil || r.Type != TypeResponse || !bytes.Equal(r.Payload, p) {
					errs <- fmt.Errorf("call %d/%d: %v %v %q", g, i, err, r.Type, r.Payload)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, err = c.Call(ctx, &Frame{Type: TypeCall, Payload: []byte("fail")})
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "asked to fail" {
		t.Fatalf("error frame: %v", err)
	}
	short, c2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer c2()
	if _, err := c.Receive(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("receive with nothing pending: %v", err)
	}
	c.Close()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not see the close")
	}
	l.Close()
}

func TestDialRefusedWhenNotAllowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sk, _ := GeneratePrivateKey()
	other, _ := GeneratePrivateKey()
	ck, _ := GeneratePrivateKey()
	l, err := Listen(ctx, "127.0.0.1:0", Options{PrivateKey: sk, AllowPeers: []PublicKey{other.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dctx, dcancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer dcancel()
	if _, err := Dial(dctx, l.Addr().String(), Options{PrivateKey: ck, ServerKey: l.PublicKey()}); err == nil {
		t.Fatal("a client not on the allow-list connected")
	}
	if l.Stats().PeersRefused == 0 {
		t.Fatal("refusal not counted")
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k, _ := GeneratePrivateKey()
	path := filepath.Join(dir, "key")
	if err := SavePrivateKey(path, k); err != nil {
		t.Fatal(err)
	}
	if err := SavePrivateKey(path, k); !errors.Is(err, ErrKeyFileExists) {
		t.Fatalf("overwrite: %v", err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	got, err := LoadPrivateKey(path)
	if err != nil || got != k {
		t.Fatalf("load: %v", err)
	}
	pub, err := ParsePublicKey(k.PublicKey().String())
	if err != nil || pub != k.PublicKey() {
		t.Fatal("public key round trip")
	}
	os.Chmod(path, 0o644)
	if _, err := LoadPrivateKey(path); err == nil {
		t.Fatal("loaded a world-readable key")
	}
	for _, bad := range []string{"", "not base64!", "AAAA"} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Fatalf("parsed %q", bad)
		}
	}
}

func TestBadFrameDrawsErrorFrame(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sk, _ := GeneratePrivateKey()
	ck, _ := GeneratePrivateKey()
	l, err := Listen(ctx, "127.0.0.1:0", Options{PrivateKey: sk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := Dial(ctx, l.Addr().String(), Options{PrivateKey: ck, ServerKey: l.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	good, _ := AppendFrame(nil, &Frame{Type: TypeEvent, MessageID: 5, Payload: []byte("x")})
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff // checksum mismatch
	for _, m := range [][]byte{bad, []byte("short"), good} {
		if err := c.t.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Receive(ctx)
	if err != nil || f.MessageID != 5 {
		t.Fatalf("the valid frame after the bad ones: %+v %v", f, err)
	}
	if s.RejectedFrames() != 2 {
		t.Fatalf("rejected %d", s.RejectedFrames())
	}
	for range 2 {
		e, err := c.Receive(ctx)
		if err != nil || e.Type != TypeError {
			t.Fatalf("want an Error frame back, got %+v %v", e, err)
		}
		p, err := DecodeErrorPayload(e.Payload)
		if err != nil || p.Code == "" {
			t.Fatalf("error payload %q: %v", e.Payload, err)
		}
	}
}

// Options.Serve answers on the listener's read goroutine: Calls from many goroutines each
// get their own answer, a bad message draws an Error frame, and Accept is not used.
func TestListenServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sk, _ := GeneratePrivateKey()
	ck, _ := GeneratePrivateKey()
	l, err := Listen(ctx, "127.0.0.1:0", Options{PrivateKey: sk, Serve: Echo})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Accept(ctx); !errors.Is(err, ErrServing) {
		t.Fatalf("Accept with Serve set: %v, want ErrServing", err)
	}
	c, err := Dial(ctx, l.Addr().String(), Options{PrivateKey: ck, ServerKey: l.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p := fmt.Appendf(nil, "%d/%d", g, i)
				r, err := c.Call(ctx, &Frame{Type: TypeCall, Payload: p})
				if err != nil || r.Type != TypeResponse || !bytes.Equal(r.Payload, p) {
					errs <- fmt.Errorf("call %s: %+v %v", p, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := c.t.Send(ctx, []byte("not a frame")); err != nil {
		t.Fatal(err)
	}
	e, err := c.Receive(ctx)
	if err != nil || e.Type != TypeError {
		t.Fatalf("want an Error frame for a bad message, got %+v %v", e, err)
	}
	if l.DroppedAnswers() != 0 {
		t.Fatalf("%d answers dropped", l.DroppedAnswers())
	}
}

// A frame over the listener's Transport.MaxMessageSize is refused from its length prefix
// and answered with an Error frame too_large that names its message id; the connection
// goes on. Both ways of serving: Accept (Conn's reader) and Options.Serve.
func TestFrameOverLimitAnsweredTooLarge(t *testing.T) {
	for _, serve := range []bool{false, true} {
		t.Run(fmt.Sprint("serve=", serve), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sk, _ := GeneratePrivateKey()
			ck, _ := GeneratePrivateKey()
			opts := Options{PrivateKey: sk}
			opts.Transport.MaxMessageSize = 4096
			if serve {
				opts.Serve = Echo
			}
			l, err := Listen(ctx, "127.0.0.1:0", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			c, err := Dial(ctx, l.Addr().String(), Options{PrivateKey: ck, ServerKey: l.PublicKey()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !serve {
				s, err := l.Accept(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				go s.Serve(ctx, Echo)
			}
			r, err := c.Call(ctx, &Frame{Type: TypeCall, MessageID: 77, Payload: make([]byte, 64<<10)})
			if err == nil && r.Type == TypeError {
				p, derr := DecodeErrorPayload(r.Payload)
				if derr != nil {
					t.Fatal(derr)
				}
				err = p.Err()
			}
			// Call matches answers by message id: an answer at all names message 77.
			if ErrorCodeFor(err) != CodeTooLarge {
				t.Fatalf("oversize call: %+v %v, want too_large", r, err)
			}
			r, err = c.Call(ctx, &Frame{Type: TypeCall, Payload: []byte("small")})
			if err != nil || string(r.Payload) != "small" {
				t.Fatalf("the call after: %+v %v", r, err)
			}
			if st := l.Stats(); st.MessagesTooLarge != 1 {
				t.Fatalf("MessagesTooLarge %d, want 1", st.MessagesTooLarge)
			}
		})
	}
}
