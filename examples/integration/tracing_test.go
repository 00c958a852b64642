package integration

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	mlog "github.com/mxp-mesh/mesh/pkg/common/log"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// spanSink is a SpanProcessor that hands every ended span to a channel, so a test waits
// on the spans themselves rather than polling for them. It never blocks the mesh: a span
// that finds the channel full (over a thousand unread) is dropped.
type spanSink chan sdktrace.ReadOnlySpan

func (s spanSink) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s spanSink) OnEnd(sp sdktrace.ReadOnlySpan) {
	select {
	case s <- sp:
	default:
	}
}
func (s spanSink) Shutdown(context.Context) error   { return nil }
func (s spanSink) ForceFlush(context.Context) error { return nil }

// waitSpans reads ended spans until every name in want has one in trace tid, and returns
// them by name.
func waitSpans(t *testing.T, sink spanSink, tid trace.TraceID, want ...string) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	got := map[string]sdktrace.ReadOnlySpan{}
	timeout := time.After(20 * time.Second)
	for {
		missing := 0
		for _, n := range want {
			if got[n] == nil {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		select {
		case s := <-sink:
			if s.SpanContext().TraceID() == tid {
				if got[s.Name()] != nil {
					t.Fatalf("two %s spans in trace %s", s.Name(), tid)
				}
				got[s.Name()] = s
			}
		case <-timeout:
			t.Fatalf("spans of trace %s: have %v, want %v", tid, keys(got), want)
		}
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// tracedMesh starts a mesh whose services record their spans into the returned sink, and
// returns a constructor of agents that record theirs there too.
func tracedMesh(t *testing.T, logger *slog.Logger) (*meshtest.Mesh, spanSink, func(name string) *agent.Agent) {
	t.Helper()
	sink := make(spanSink, 1024)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sink))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m, err := meshtest.StartWith(t.TempDir(), meshtest.Options{Logger: logger, Tracer: tp.Tracer("mesh")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("mesh: %v", err)
		}
	})
	traced := func(name string) *agent.Agent {
		a, err := agent.New(agent.Config{Name: name, EdgeAddr: m.EdgeAddr, EdgeKey: m.EdgeKey,
			KeyFile: t.TempDir() + "/agent.key", HeartbeatInterval: time.Second, Logger: quiet(), TracerProvider: tp})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	return m, sink, traced
}

// checkChain fails the test unless each span of chain is the parent of the next.
func checkChain(t *testing.T, spans map[string]sdktrace.ReadOnlySpan, chain []string) {
	t.Helper()
	for i := 1; i < len(chain); i++ {
		if got, want := spans[chain[i]].Parent().SpanID(), spans[chain[i-1]].SpanContext().SpanID(); got != want {
			t.Errorf("%s's parent is %s, want %s (%s)", chain[i], got, chain[i-1], want)
		}
	}
}

// One Call followed from an SDK caller through the edge, the bus and the callee agent,
// and from the callee's handler to the registry: every hop's span is in one trace, each
// the child of the hop before, and the registry's log line for the request carries the
// trace, message and agent ids (and the span id) of that hop.
func TestOneTraceAcrossTheMesh(t *testing.T) {
	var logs meshtest.Logs
	level := new(slog.LevelVar)
	level.Set(slog.LevelDebug)
	m, sink, traced := tracedMesh(t, mlog.New(mlog.Options{Service: "mesh", Level: level, Writer: &logs}))
	callee := traced("callee")
	inHandler := make(chan trace.SpanContext, 1)
	callee.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) {
		inHandler <- trace.SpanContextFromContext(ctx)
		recs, err := callee.Discover(ctx, mxp.DiscoverRequest{Name: "callee"})
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%s:%d", p, len(recs)), nil
	})
	runAgent(t, m, callee)
	caller := traced("caller")
	runAgent(t, m, caller)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := caller.Call(ctx, callee.ID(), []byte("hi"))
	if err != nil || string(out) != "hi:1" {
		t.Fatalf("call = %q, %v", out, err)
	}
	handlerSC := <-inHandler
	tid := handlerSC.TraceID()
	if !tid.IsValid() || [16]byte(tid) != mxp.W3CTraceID(mxp.TraceIDOfW3C(tid)) {
		t.Fatalf("the handler's trace id %s is not an MXP trace", tid)
	}
	chain := []string{"agent.call", "edge.call", "edge.deliver", "agent.handle", "agent.discover", "edge.discover", "registry.discover"}
	spans := waitSpans(t, sink, tid, chain...)
	checkChain(t, spans, chain)
	if handlerSC.SpanID() != spans["agent.handle"].SpanContext().SpanID() {
		t.Errorf("the handler's context carries span %s, not agent.handle", handlerSC.SpanID())
	}
	for name, kind := range map[string]trace.SpanKind{"agent.call": trace.SpanKindClient, "edge.call": trace.SpanKindServer,
		"edge.deliver": trace.SpanKindClient, "agent.handle": trace.SpanKindServer, "registry.discover": trace.SpanKindServer} {
		if spans[name].SpanKind() != kind {
			t.Errorf("%s is a %v span, want %v", name, spans[name].SpanKind(), kind)
		}
	}

	// The registry's line for the discover: the MXP trace id, the message id the SDK sent
	// (the one its agent.discover span stands for), the calling agent, the span.
	traceID := mxp.TraceIDOfW3C(tid)
	msgID := mxp.MessageIDForSpan(traceID, spans["agent.discover"].SpanContext().SpanID())
	want := map[string]string{
		mlog.KeyTraceID: fmt.Sprintf("%016x", traceID),
		mlog.KeyMsgID:   fmt.Sprintf("%016x", msgID),
		mlog.KeyAgentID: callee.ID(),
		mlog.KeySpanID:  spans["registry.discover"].SpanContext().SpanID().String(),
	}
	var found map[string]any
	lines, err := logs.Lines()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range lines {
		if line["msg"] == "request handled" && line["endpoint"] == "discover" && line[mlog.KeyTraceID] == want[mlog.KeyTraceID] {
			found = line
		}
	}
	if found == nil {
		t.Fatalf("no registry log line for the discover of trace %s", want[mlog.KeyTraceID])
	}
	for k, v := range want {
		if found[k] != v {
			t.Errorf("log line %s = %v, want %s (line %v)", k, found[k], v, found)
		}
	}
	if found["outcome"] != "ok" {
		t.Errorf("log line outcome %v", found["outcome"])
	}
}

// A Call made under an application span whose trace MXP cannot carry (a random 128-bit
// trace id) continues in the MXP trace of its low 64 bits, linked to the application's
// span; the mesh's spans are in that trace.
func TestCallUnderAWideTrace(t *testing.T) {
	m, sink, traced := tracedMesh(t, nil)
	callee := newAgent(t, m, "callee")
	callee.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) { return p, nil })
	runAgent(t, m, callee)
	caller := traced("caller")
	runAgent(t, m, caller)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app := sdktrace.NewTracerProvider() // the application's own provider: 128-bit trace ids
	ctx, appSpan := app.Tracer("app").Start(ctx, "app")
	appSC := appSpan.SpanContext()
	if _, err := caller.Call(ctx, callee.ID(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	appSpan.End()
	tid := trace.TraceID(mxp.W3CTraceID(mxp.TraceIDOfW3C(appSC.TraceID())))
	if tid == appSC.TraceID() {
		t.Skip("the random application trace id happens to fit in 64 bits")
	}
	spans := waitSpans(t, sink, tid, "agent.call", "edge.call", "edge.deliver")
	call := spans["agent.call"]
	if call.Parent().SpanID() != appSC.SpanID() {
		t.Errorf("agent.call's parent %s, want the application's span id %s", call.Parent().SpanID(), appSC.SpanID())
	}
	if links := call.Links(); len(links) != 1 || !links[0].SpanContext.Equal(appSC) {
		t.Errorf("agent.call's links %v, want the application's span", links)
	}
	if spans["edge.call"].Parent().SpanID() != call.SpanContext().SpanID() ||
		spans["edge.deliver"].Parent().SpanID() != spans["edge.call"].SpanContext().SpanID() {
		t.Error("the mesh's spans do not chain under agent.call")
	}
}

// The registry's spans of an agent's registration and heartbeats are the children of the
// edge's spans of the frames that carried them, in the trace of those frames.
func TestRegistrySpansUnderTheEdge(t *testing.T) {
	m, sink, _ := tracedMesh(t, nil)
	runAgent(t, m, newAgent(t, m, "beating")) // heartbeats every second

	edgeSpans := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var registry []sdktrace.ReadOnlySpan
	found := map[string]bool{}
	timeout := time.After(20 * time.Second)
	for !found["register"] || !found["heartbeat"] {
		select {
		case s := <-sink:
			switch s.Name() {
			case "edge.register", "edge.heartbeat":
				edgeSpans[s.SpanContext().SpanID()] = s
			case "registry.register", "registry.heartbeat":
				registry = append(registry, s)
			}
		case <-timeout:
			t.Fatalf("registry spans under an edge span: %v", found)
		}
		// The edge ends its span after the registry's reply, so match what has come.
		for _, r := range registry {
			p, ok := edgeSpans[r.Parent().SpanID()]
			if !ok {
				continue
			}
			verb := r.Name()[len("registry."):]
			if p.Name() != "edge."+verb || p.SpanContext().TraceID() != r.SpanContext().TraceID() {
				t.Fatalf("%s's parent is %s in trace %s", r.Name(), p.Name(), p.SpanContext().TraceID())
			}
			found[verb] = true
		}
	}
}

// An Event followed from its publisher to a subscriber's handler: agent.publish →
// edge.publish → edge.deliver → agent.handle, one trace, each the parent of the next.
func TestEventTrace(t *testing.T) {
	m, sink, traced := tracedMesh(t, nil)
	sub := traced("subscriber")
	got := make(chan trace.SpanContext, 1)
	sub.HandleEvent(func(ctx context.Context, ev agent.Event) error {
		got <- trace.SpanContextFromContext(ctx)
		return nil
	})
	runAgent(t, m, sub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.Subscribe(ctx, "news.>"); err != nil {
		t.Fatal(err)
	}
	pub := traced("publisher")
	runAgent(t, m, pub)
	if err := pub.Publish(ctx, "news.today", []byte("sunny")); err != nil {
		t.Fatal(err)
	}
	var handler trace.SpanContext
	select {
	case handler = <-got:
	case <-ctx.Done():
		t.Fatal("the event never reached the handler")
	}
	chain := []string{"agent.publish", "edge.publish", "edge.deliver", "agent.handle"}
	spans := waitSpans(t, sink, handler.TraceID(), chain...)
	checkChain(t, spans, chain)
	if spans["agent.handle"].SpanContext().SpanID() != handler.SpanID() {
		t.Error("the event handler's context does not carry agent.handle")
	}
	for name, kind := range map[string]trace.SpanKind{"agent.publish": trace.SpanKindProducer,
		"edge.deliver": trace.SpanKindProducer, "agent.handle": trace.SpanKindConsumer} {
		if spans[name].SpanKind() != kind {
			t.Errorf("%s is a %v span, want %v", name, spans[name].SpanKind(), kind)
		}
	}
}

// A stream followed from its opener to the handler that serves it: agent.stream →
// edge.stream → edge.deliver → agent.handle.
func TestStreamTrace(t *testing.T) {
	m, sink, traced := tracedMesh(t, nil)
	server := traced("streamer")
	got := make(chan trace.SpanContext, 1)
	server.HandleStream(func(ctx context.Context, s *agent.Stream) error {
		got <- trace.SpanContextFromContext(ctx)
		return s.Send(ctx, s.Request())
	})
	runAgent(t, m, server)
	client := traced("opener")
	runAgent(t, m, client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client.OpenStream(ctx, server.ID(), mxp.StreamKind(0), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := cs.Recv(ctx); err != nil || string(b) != "hello" {
		t.Fatalf("stream chunk %q, %v", b, err)
	}
	var handler trace.SpanContext
	select {
	case handler = <-got:
	case <-ctx.Done():
		t.Fatal("the stream never reached the handler")
	}
	chain := []string{"agent.stream", "edge.stream", "edge.deliver", "agent.handle"}
	checkChain(t, waitSpans(t, sink, handler.TraceID(), chain...), chain)
}

// A chat stream from an agent to the inference service: agent.stream → edge.stream → the
// service's endpoint span, one trace.
func TestInferenceStreamTrace(t *testing.T) {
	m, sink, traced := tracedMesh(t, nil)
	a := traced("chatter")
	runAgent(t, m, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := llm.NewChatRequest("", llm.Message{Role: llm.RoleUser, Content: "hello"})
	s, err := llm.Mesh(a).OpenStream(ctx, &req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := llm.CollectStream(s); err != nil {
		t.Fatal(err)
	}
	// The spans end in no set order (the edge answers the open before it sends the
	// request on): gather them until the three hops of one trace are in.
	var seen []sdktrace.ReadOnlySpan
	find := func(in trace.TraceID, match func(string) bool) sdktrace.ReadOnlySpan { // in: any trace when invalid
		for _, sp := range seen {
			if match(sp.Name()) && (!in.IsValid() || sp.SpanContext().TraceID() == in) {
				return sp
			}
		}
		return nil
	}
	for {
		if open := find(trace.TraceID{}, func(n string) bool { return n == "agent.stream" }); open != nil {
			tid := open.SpanContext().TraceID()
			edgeSpan := find(tid, func(n string) bool { return n == "edge.stream" })
			svc := find(tid, func(n string) bool { return strings.HasPrefix(n, "inference.") })
			if edgeSpan != nil && svc != nil {
				checkChain(t, map[string]sdktrace.ReadOnlySpan{"agent.stream": open, "edge.stream": edgeSpan, svc.Name(): svc},
					[]string{"agent.stream", "edge.stream", svc.Name()})
				return
			}
		}
		select {
		case sp := <-sink:
			seen = append(seen, sp)
		case <-ctx.Done():
			t.Fatalf("the stream's spans did not all come: %d spans seen", len(seen))
		}
	}
}
