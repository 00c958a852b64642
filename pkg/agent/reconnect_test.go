package agent

import (
	"context"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// The edge goes away and comes back: the agent reconnects, registers again, renews its
// subscription and serves calls on the new connection.
func TestRunReconnects(t *testing.T) {
	a := newTestAgent(t)
	a.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) { return p, nil })
	edges := make(chan *fakeEdge, 4)
	var ends []*pipeEnd
	dial := func(ctx context.Context) (FrameConn, error) {
		agentEnd, edgeEnd := framePipe()
		ends = append(ends, edgeEnd)
		edges <- newFakeEdge(t, edgeEnd)
		return agentEnd, nil
	}
	done := make(chan error, 1)
	go func() { done <- a.runRedialing(context.Background(), dial, "pipe", "key") }()
	waitState(t, a, StateActive)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Subscribe(ctx, "news.>"); err != nil {
		t.Fatal(err)
	}
	first := <-edges
	first.callAgent(1, mxp.AgentID{7}, "one")
	if f := first.nextReply(t); string(f.Payload) != "one" {
		t.Fatalf("first reply %q", f.Payload)
	}

	ends[0].Close() // the edge disappears
	second := <-edges
	// The new edge sees a fresh registration (the heartbeat loop registers again).
	deadline := time.Now().Add(15 * time.Second)
	for {
		second.mu.Lock()
		n := len(second.registered)
		second.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no registration on the new connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
	second.callAgent(2, mxp.AgentID{7}, "two")
	if f := second.nextReply(t); string(f.Payload) != "two" {
		t.Fatalf("second reply %q", f.Payload)
	}
	if a.State() != StateActive {
		t.Fatalf("state %s after reconnect", a.State())
	}
	if out, err := a.Call(ctx, echoID.String(), []byte("x")); err != nil || string(out) != "echo:x" {
		t.Fatalf("call out after reconnect: %q %v", out, err)
	}
	a.Retire()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
