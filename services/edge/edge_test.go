package edge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// twoEdges is the mesh of the tests: one bus, a registry, two edges (both with
// the config changes of mod); agent A on edge 1 and agent B on edge 2.
type twoEdges struct {
	reg      *fakeRegistry
	e1, e2   *testEdge
	a, b     *mxp.Conn
	aID, bID mxp.AgentID
	bCalls   *countingSet
}

func newTwoEdges(t *testing.T, mod2 func(*Config)) *twoEdges {
	bs := testBus(t)
	m := &twoEdges{reg: startFakeRegistry(t, bs), bCalls: &countingSet{}}
	m.e1 = startEdge(t, bs, mod2)
	m.e2 = startEdge(t, bs, mod2)
	m.a = dial(t, m.e1.addr)
	m.b = dial(t, m.e2.addr)
	m.aID = registerAgent(t, m.a, "alice", "ask")
	m.bID = registerAgent(t, m.b, "bob", "echo", "math")
	return m
}

func TestCallAcrossEdgesByIDAndCapability(t *testing.T) {
	m := newTwoEdges(t, nil)
	serveEcho(m.b, m.bCalls)
	ctx := ctxT(t)

	got, err := m.a.CallAgent(ctx, m.bID, []byte("hello"), 5*time.Second)
	if err != nil || string(got) != "hello" {
		t.Fatalf("call by id = %q, %v", got, err)
	}

	found, err := m.a.Discover(ctx, mxp.DiscoverRequest{Capabilities: []string{"echo"}})
	if err != nil {
		t.Fatal(err)
	}
	if found.Count != 1 || found.Agents[0].ID != m.bID {
		t.Fatalf("discover echo = %+v, want only bob", found)
	}
	got, err = m.a.CallAgent(ctx, found.Agents[0].ID, []byte(`{"n":42}`), 0)
	if err != nil || string(got) != `{"n":42}` {
		t.Fatalf("call by capability = %q, %v", got, err)
	}
	if framesMetric(m.e1.Edge, "Call", "in", "ok") < 2 {
		t.Fatal("calls not counted on edge 1")
	}
}

func TestCallErrorsFromTheTarget(t *testing.T) {
	m := newTwoEdges(t, nil)
	go func() {
		for f := range m.b.Inbound() {
			if f.Type == mxp.TypeCall {
				_ = m.b.RespondError(context.Background(), f, "permission_denied", "not you")
			}
		}
	}()
	_, err := m.a.CallAgent(ctxT(t), m.bID, []byte("x"), 5*time.Second)
	var re *mxp.RemoteError
	if !errors.As(err, &re) || re.Code != "permission_denied" || re.Message != "not you" {
		t.Fatalf("err = %v, want the agent's permission_denied", err)
	}
}

func TestCallTimeout(t *testing.T) {
	m := newTwoEdges(t, nil) // B never answers
	_, err := m.a.CallAgent(ctxT(t), m.bID, []byte("x"), time.Second)
	if !errors.Is(err, mxp.CodeTimeout) {
		t.Fatalf("err = %v, want timeout", err)
	}
}

func TestConcurrentCallsNoneLostNoneDuplicated(t *testing.T) {
	m := newTwoEdges(t, nil)
	serveEcho(m.b, m.bCalls)
	const n = 1000
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			want := "call-" + strconv.Itoa(i)
			got, err := m.a.CallAgent(ctx, m.bID, []byte(want), 15*time.Second)
			if err != nil {
				errs <- fmt.Errorf("%s: %w", want, err)
				return
			}
			if string(got) != want {
				errs <- fmt.Errorf("%s answered with %q", want, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	m.bCalls.mu.Lock()
	defer m.bCalls.mu.Unlock()
	if len(m.bCalls.m) != n {
		t.Fatalf("B saw %d distinct calls, want %d", len(m.bCalls.m), n)
	}
	for k, c := range m.bCalls.m {
		if c != 1 {
			t.Fatalf("B saw %s %d times", k, c)
		}
	}
}

func TestEdgeStopMakesCallsUnreachable(t *testing.T) {
	m := newTwoEdges(t, nil)
	serveEcho(m.b, nil)
	if _, err := m.a.CallAgent(ctxT(t), m.bID, []byte("up"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	m.e2.stop()
	_, err := m.a.CallAgent(ctxT(t), m.bID, []byte("down"), 30*time.Second)
	if !errors.Is(err, mxp.CodeUnreachable) {
		t.Fatalf("err = %v, want unreachable (not a timeout)", err)
	}
	// Stopping edge 2 deregistered the agents it carried.
	waitFor(t, "B deregistered", func() bool { return !m.reg.has(m.bID) })
}

func TestDisconnectDeregisters(t *testing.T) {
	m := newTwoEdges(t, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	if !m.reg.has(m.bID) {
		t.Fatal("B not registered")
	}
	m.b.Close() // B goes silent; its plaintext connection times out
	waitFor(t, "B's registration gone", func() bool { return !m.reg.has(m.bID) })
	waitFor(t, "B's edge forgot it", func() bool { return m.e2.owner(m.bID) == nil })
	_, err := m.a.CallAgent(ctxT(t), m.bID, []byte("x"), 30*time.Second)
	if !errors.Is(err, mxp.CodeUnreachable) {
		t.Fatalf("err = %v, want unreachable", err)
	}
	found, err := m.a.Discover(ctxT(t), mxp.DiscoverRequest{Capability: "echo"})
	if err != nil || found.Count != 0 {
		t.Fatalf("discover after disconnect = %+v, %v", found, err)
	}
}

func TestFinalHeartbeatDeregisters(t *testing.T) {
	m := newTwoEdges(t, nil)
	if hb, err := m.b.Heartbeat(ctxT(t), m.bID, false); err != nil || !hb.Success {
		t.Fatalf("heartbeat = %+v, %v", hb, err)
	}
	if _, err := m.b.Heartbeat(ctxT(t), m.bID, true); err != nil {
		t.Fatal(err)
	}
	if m.reg.has(m.bID) {
		t.Fatal("still registered after a FINAL heartbeat")
	}
	waitFor(t, "edge forgot B", func() bool { return m.e2.owner(m.bID) == nil })
	// The id is free again: another connection may now register it.
	c := dial(t, m.e1.addr)
	if _, err := c.Register(ctxT(t), mxp.RegisterRequest{ID: m.bID, Name: "bob2", Metadata: mxp.AgentMetadata{Version: "1"}}); err != nil {
		t.Fatalf("re-register freed id: %v", err)
	}
}

func TestOwnership(t *testing.T) {
	m := newTwoEdges(t, nil)
	ctx := ctxT(t)
	thief := dial(t, m.e1.addr)
	// The same id from another connection: on B's edge and on another edge.
	for _, c := range []*mxp.Conn{dial(t, m.e2.addr), thief} {
		_, err := c.Register(ctx, mxp.RegisterRequest{ID: m.bID, Name: "mallory", Metadata: mxp.AgentMetadata{Version: "1"}})
		if !errors.Is(err, mxp.CodeForbidden) {
			t.Fatalf("hijacking register: err = %v, want forbidden", err)
		}
	}
	// Heartbeats and deregistration for an agent the connection does not carry.
	for _, final := range []bool{false, true} {
		if _, err := thief.Heartbeat(ctx, m.bID, final); !errors.Is(err, mxp.CodeForbidden) {
			t.Fatalf("foreign heartbeat (final=%v): err = %v, want forbidden", final, err)
		}
	}
	if !m.reg.has(m.bID) {
		t.Fatal("foreign FINAL heartbeat deregistered B")
	}
	if framesMetric(m.e1.Edge, "AgentHeartbeat", "in", "forbidden") != 2 {
		t.Fatal("forbidden heartbeats not counted")
	}
	// Service ids are reserved.
	_, err := thief.Register(ctx, mxp.RegisterRequest{ID: mxp.ServiceInference, Name: "fake", Metadata: mxp.AgentMetadata{Version: "1"}})
	if !errors.Is(err, mxp.CodeForbidden) {
		t.Fatalf("registering a service id: err = %v", err)
	}
}

func TestUnreachableTargets(t *testing.T) {
	m := newTwoEdges(t, nil)
	for name, target := range map[string]mxp.AgentID{
		"unknown agent":         mxp.NewAgentID(),
		"service not running":   mxp.ServicePolicy,
		"inference not running": mxp.ServiceInference,
	} {
		_, err := m.a.CallAgent(ctxT(t), target, []byte("x"), 30*time.Second)
		if !errors.Is(err, mxp.CodeUnreachable) {
			t.Errorf("%s: err = %v, want unreachable", name, err)
		}
	}
}

func TestCallToService(t *testing.T) {
	m := newTwoEdges(t, nil)
	// Calls to the registry's id go to its discover endpoint.
	r, err := m.a.CallAgent(ctxT(t), mxp.ServiceRegistry, []byte(`{"capability":"math"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d, err := mxp.DecodeDiscoverResponse(r)
	if err != nil || d.Count != 1 || d.Agents[0].ID != m.bID {
		t.Fatalf("registry call = %s, %v", r, err)
	}
}

func TestRequiresAckThenResponse(t *testing.T) {
	m := newTwoEdges(t, nil)
	serveEcho(m.b, nil)
	cp := mxp.CallPayload{Target: m.bID, Data: []byte("ack me")}
	payload, _ := cp.AppendPayload(nil)
	for _, typ := range []mxp.MessageType{mxp.TypeCall, mxp.TypeAgentDiscover} {
		body := payload
		if typ == mxp.TypeAgentDiscover {
			body = []byte(`{}`)
		}
		p, err := m.a.Start(ctxT(t), &mxp.Frame{Type: typ, Flags: mxp.FlagRequiresAck, Payload: body})
		if err != nil {
			t.Fatal(err)
		}
		first, err := p.Wait(ctxT(t))
		if err != nil || first.Type != mxp.TypeAck {
			t.Fatalf("%s: first answer %s %v, want Ack", typ, first.Type, err)
		}
		ack, err := mxp.DecodeAck(first.Payload)
		if err != nil || ack.MessageID != first.MessageID {
			t.Fatalf("%s: Ack payload %+v %v", typ, ack, err)
		}
		select {
		case f := <-m.a.Inbound():
			if f.Type != mxp.TypeResponse || f.MessageID != first.MessageID {
				t.Fatalf("%s: then %s for %d, want the Response for %d", typ, f.Type, f.MessageID, first.MessageID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no Response after the Ack", typ)
		}
	}
}

// TestCallerIdentityDelivered: an agent alone on its connection sees the caller's agent id
// in the delivered Call's target field; anonymous callers leave its own id there.
func TestCallerIdentityDelivered(t *testing.T) {
	m := newTwoEdges(t, nil)
	targets := make(chan mxp.AgentID, 2)
	go func() {
		for f := range m.b.Inbound() {
			if f.Type == mxp.TypeCall {
				cp, _ := mxp.DecodeCall(f.Payload)
				targets <- cp.Target
				_ = m.b.Respond(context.Background(), f, nil)
			}
		}
	}()
	if _, err := m.a.CallAgent(ctxT(t), m.bID, nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := <-targets; got != m.aID {
		t.Fatalf("delivered target %s, want the caller %s", got, m.aID)
	}
	anon := dial(t, m.e1.addr)
	if _, err := anon.CallAgent(ctxT(t), m.bID, nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := <-targets; got != m.bID {
		t.Fatalf("anonymous call delivered target %s, want B's own id %s", got, m.bID)
	}
}
