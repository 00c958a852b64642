package edge

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// testBus starts an in-process NATS server for a test.
func testBus(t testing.TB) *bus.Bus {
	t.Helper()
	b, err := bus.Start(bus.Config{Embedded: bus.EmbeddedConfig{DontListen: true}}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// fakeRegistry answers the registry subjects from memory, as the registry service does,
// so the edge's routing is tested without importing another service.
type fakeRegistry struct {
	mu     sync.Mutex
	agents map[mxp.AgentID]mxp.RegisterRequest
}

func startFakeRegistry(t testing.TB, b *bus.Bus) *fakeRegistry {
	t.Helper()
	nc, err := b.NewConn("fake-registry")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := &fakeRegistry{agents: map[mxp.AgentID]mxp.RegisterRequest{}}
	reply := func(m *nats.Msg, v any) {
		body, _ := json.Marshal(v)
		_ = m.Respond(body)
	}
	subs := map[string]nats.MsgHandler{
		bus.SubjectRegistryRegister: func(m *nats.Msg) {
			req, err := mxp.DecodeRegisterRequest(m.Data)
			if err != nil {
				respondError(m, mxp.CodeInvalidPayload, err.Error())
				return
			}
			r.mu.Lock()
			r.agents[req.ID] = req
			r.mu.Unlock()
			reply(m, mxp.RegisterResponse{Success: true, AgentID: req.ID, Message: "registered"})
		},
		bus.SubjectRegistryHeartbeat: func(m *nats.Msg) {
			req, _ := mxp.DecodeHeartbeatRequest(m.Data)
			r.mu.Lock()
			_, ok := r.agents[req.AgentID]
			r.mu.Unlock()
			reply(m, mxp.HeartbeatResponse{Success: ok, NeedsRegister: !ok, AgentID: req.AgentID, Timestamp: time.Now()})
		},
		bus.SubjectRegistryDeregister: func(m *nats.Msg) {
			req, _ := mxp.DecodeHeartbeatRequest(m.Data)
			r.mu.Lock()
			delete(r.agents, req.AgentID)
			r.mu.Unlock()
			reply(m, mxp.RegisterResponse{Success: true, AgentID: req.AgentID, Message: "deregistered"})
		},
		bus.SubjectRegistryDiscover: func(m *nats.Msg) {
			req, err := mxp.DecodeDiscoverRequest(m.Data)
			if err != nil {
				respondError(m, mxp.CodeInvalidPayload, err.Error())
				return
			}
			resp := mxp.DiscoverResponse{Agents: []mxp.AgentRecord{}}
			r.mu.Lock()
			for _, a := range r.agents {
				if hasAll(a.Capabilities, req.Required()) && strings.HasPrefix(a.Name, req.NamePrefix) {
					resp.Agents = append(resp.Agents, mxp.AgentRecord{ID: a.ID, Name: a.Name, Capabilities: a.Capabilities, Status: mxp.StatusOnline})
				}
			}
			r.mu.Unlock()
			resp.Count = len(resp.Agents)
			reply(m, resp)
		},
	}
	for subj, h := range subs {
		if _, err := nc.QueueSubscribe(subj, bus.QueueRegistry, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *fakeRegistry) has(id mxp.AgentID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.agents[id]
	return ok
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// testEdge is an edge with a plaintext listener on a loopback port, running until the
// test ends (or stop is called).
type testEdge struct {
	*Edge
	addr string
	stop func()
}

func startEdge(t testing.TB, b *bus.Bus, mod func(*Config)) *testEdge {
	t.Helper()
	cfg := Config{CompatAddr: "127.0.0.1:0", Addr: "off"}
	if mod != nil {
		mod(&cfg)
	}
	return startEdgeCfg(t, b, cfg)
}

// traceEdges makes the edges the tests and benchmarks start trace (go test -args
// -edge.trace): spans sampled as OTEL_TRACES_SAMPLER says (default: parent-based, always
// on) and exported in batches to an exporter that drops them, the production shape minus
// the network. Benchmarks run with it to price tracing on the hot path.
var traceEdges = flag.Bool("edge.trace", false, "the edges started by tests and benchmarks record spans (exported in batches to a discarding exporter)")

func startEdgeCfg(t testing.TB, b *bus.Bus, cfg Config) *testEdge {
	t.Helper()
	return startEdgeWith(t, b, cfg, service.Deps{})
}

// startEdgeWith is startEdgeCfg with deps (its Conn and a nil Logger are filled in).
func startEdgeWith(t testing.TB, b *bus.Bus, cfg Config, deps service.Deps) *testEdge {
	t.Helper()
	nc, err := b.NewConn("edge")
	if err != nil {
		t.Fatal(err)
	}
	deps.Conn = nc
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Tracer == nil && *traceEdges {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		deps.Tracer = tp.Tracer("edge")
	}
	e, err := New(cfg, Deps{Deps: deps})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("edge run: %v", err)
		}
		nc.Close()
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	select {
	case <-e.Serving():
	case <-done: // Run failed to bind: its error is reported above
		t.FailNow()
	}
	return &testEdge{Edge: e, addr: e.Addrs()["compat"], stop: stop}
}

func dial(t testing.TB, addr string) *mxp.Conn {
	t.Helper()
	c, err := mxp.DialPlaintext(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// registerAgent registers a new agent over c and returns its id.
func registerAgent(t testing.TB, c *mxp.Conn, name string, caps ...string) mxp.AgentID {
	t.Helper()
	id := mxp.NewAgentID()
	_, err := c.Register(ctxT(t), mxp.RegisterRequest{ID: id, Name: name, Capabilities: caps, Metadata: mxp.AgentMetadata{Version: "1.0.0"}})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return id
}

// serveEcho answers every Call on c with its data, and counts them.
func serveEcho(c *mxp.Conn, calls *countingSet) {
	serveCalls(c, func(_ mxp.Frame, data []byte) ([]byte, mxp.ErrorCode) {
		if calls != nil {
			calls.add(string(data))
		}
		return data, ""
	})
}

// serveCalls answers every Call on c with what answer returns for the frame and its
// data: a Response, or an Error when the code is not empty.
func serveCalls(c *mxp.Conn, answer func(f mxp.Frame, data []byte) ([]byte, mxp.ErrorCode)) {
	go func() {
		for f := range c.Inbound() {
			if f.Type != mxp.TypeCall {
				continue
			}
			cp, err := mxp.DecodeCall(f.Payload)
			if err != nil {
				continue
			}
			if out, code := answer(f, cp.Data); code != "" {
				_ = c.RespondError(context.Background(), f, code, string(code))
			} else {
				_ = c.Respond(context.Background(), f, out)
			}
		}
	}()
}

type countingSet struct {
	mu sync.Mutex
	m  map[string]int
}

func (s *countingSet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]int{}
	}
	s.m[k]++
}

func framesMetric(e *Edge, typ, dir, outcome string) float64 {
	return testutil.ToFloat64(e.m.frames.WithLabelValues(typ, dir, outcome))
}

// startSecureEdge is an edge on the secure transport only, with a fresh key.
func startSecureEdge(t testing.TB, b *bus.Bus) (*testEdge, transport.PublicKey) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "edge.key")
	te := startEdgeCfg(t, b, Config{Addr: "127.0.0.1:0", KeyFile: keyFile})
	pub, err := transport.ParsePublicKey(te.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	te.addr = te.Addrs()["secure"]
	return te, pub
}

func dialSecure(t testing.TB, addr string, edgeKey transport.PublicKey) *mxp.Conn {
	t.Helper()
	key, err := transport.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := mxp.Dial(ctxT(t), addr, mxp.Options{PrivateKey: key, ServerKey: edgeKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func asRemote(err error, re **mxp.RemoteError) bool { return errors.As(err, re) }

// chargedSources is how many source addresses have agents charged to them.
func chargedSources(e *Edge) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.perSource)
}
