package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// memConn is an in-memory meshConn: the test plays the edge.
type memConn struct {
	*fakeRegistry
	in     chan Inbound
	out    *outbox
	fail   chan error
	mu     sync.Mutex
	closed int
}

func newMemConn() *memConn {
	return &memConn{
		fakeRegistry: &fakeRegistry{events: make(chan string, 1<<12)},
		in:           make(chan Inbound, 16),
		out:          newOutbox(),
		fail:         make(chan error, 1),
	}
}

func (c *memConn) Recv(ctx context.Context) (Inbound, error) {
	select {
	case in := <-c.in:
		return in, nil
	case err := <-c.fail:
		return Inbound{}, err
	case <-ctx.Done():
		return Inbound{}, ctx.Err()
	}
}

func (c *memConn) Send(ctx context.Context, out Outbound) error { return c.out.send(ctx, out) }

func (c *memConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed++
	return nil
}

func waitState(t *testing.T, a *Agent, want State) {
	t.Helper()
	ch, stop := a.Lifecycle().Subscribe(16)
	defer stop()
	if a.State() == want {
		return
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case tr, ok := <-ch:
			if ok && tr.To == want || a.State() == want {
				return
			}
			if !ok {
				t.Fatalf("lifecycle ended in %s, want %s", a.State(), want)
			}
		case <-timeout:
			t.Fatalf("state %s, want %s", a.State(), want)
		}
	}
}

func newTestAgent(t *testing.T) *Agent {
	t.Helper()
	a, err := New(Config{Name: "tester", Capabilities: []string{"echo"}, HeartbeatInterval: time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAgentLifecycleOverAConnection(t *testing.T) {
	a := newTestAgent(t)
	release := make(chan struct{})
	a.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) {
		if string(p) == "slow" {
			<-release
		}
		return append([]byte("re:"), p...), nil
	})
	conn := newMemConn()
	done := make(chan error, 1)
	go func() { done <- a.serve(context.Background(), conn) }()
	waitState(t, a, StateActive)

	conn.in <- call(1, "hi")
	if out := conn.out.next(t); out.Kind != KindResponse || string(out.Payload) != "re:hi" {
		t.Fatalf("reply = %+v", out)
	}
	// Suspended: new calls are refused, heartbeats say so.
	if err := a.Suspend(); err != nil {
		t.Fatal(err)
	}
	conn.in <- call(2, "x")
	if out := conn.out.next(t); out.Kind != KindError || out.Err.Code != CodeUnavailable {
		t.Fatalf("suspended reply = %+v", out)
	}
	for {
		if ev := <-conn.events; ev != "beat" {
			continue
		}
		conn.fakeRegistry.mu.Lock()
		last := conn.heartbeats[len(conn.heartbeats)-1]
		conn.fakeRegistry.mu.Unlock()
		if last["state"] == "suspended" {
			break
		}
	}
	if err := a.Resume(); err != nil {
		t.Fatal(err)
	}
	// Retire while a call is in flight: it finishes, then deregister, close, terminated.
	conn.in <- call(3, "slow")
	time.Sleep(time.Millisecond) // let the worker pick it up; correctness does not depend on it
	a.Retire()
	a.Retire()
	waitState(t, a, StateRetiring)
	close(release)
	if out := conn.out.next(t); out.Kind != KindResponse || string(out.Payload) != "re:slow" {
		t.Fatalf("in-flight reply = %+v", out)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if a.State() != StateTerminated || conn.deregisters != 1 || conn.closed != 1 {
		t.Fatalf("state %s, deregisters %d, closes %d", a.State(), conn.deregisters, conn.closed)
	}
	if err := a.serve(context.Background(), newMemConn()); err == nil {
		t.Fatal("second Run accepted")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("setting a handler on a running agent did not panic")
		}
	}()
	a.HandleEvent(func(context.Context, Event) error { return nil })
}

func TestAgentStopsOnContextAndConnectionLoss(t *testing.T) {
	// Context cancellation: graceful, Run returns nil.
	a := newTestAgent(t)
	conn := newMemConn()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, conn) }()
	waitState(t, a, StateActive)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v", err)
	}
	if a.State() != StateTerminated || conn.deregisters != 1 {
		t.Fatalf("state %s, deregisters %d", a.State(), conn.deregisters)
	}

	// Connection loss: Run reports it.
	b := newTestAgent(t)
	conn2 := newMemConn()
	go func() { done <- b.serve(context.Background(), conn2) }()
	waitState(t, b, StateActive)
	conn2.fail <- errors.New("edge went away")
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "connection lost: edge went away") {
		t.Fatalf("Run = %v", err)
	}
	if b.State() != StateTerminated || conn2.closed != 1 {
		t.Fatalf("state %s, closes %d", b.State(), conn2.closed)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("nameless agent accepted")
	}
	if _, err := New(Config{Name: "x", ID: "not-a-uuid"}); err == nil {
		t.Fatal("bad id accepted")
	}
	a, err := New(Config{Name: "x", ID: "6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4"})
	if err != nil || a.ID() != "6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4" || a.Name() != "x" || a.State() != StateInit {
		t.Fatalf("New = %v, %v", a, err)
	}
	b, _ := New(Config{Name: "y"})
	if len(b.ID()) != 36 {
		t.Fatalf("generated id %q", b.ID())
	}
}
