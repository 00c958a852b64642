package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// pipeEnd is one end of an in-memory frame connection. Frames cross it encoded, so the
// codec is exercised on every message.
type pipeEnd struct {
	in, out    chan []byte
	closed     chan struct{}
	peerClosed chan struct{}
	once       sync.Once
}

func framePipe() (*pipeEnd, *pipeEnd) {
	ab, ba := make(chan []byte, 64), make(chan []byte, 64)
	ca, cb := make(chan struct{}), make(chan struct{})
	return &pipeEnd{in: ba, out: ab, closed: ca, peerClosed: cb}, &pipeEnd{in: ab, out: ba, closed: cb, peerClosed: ca}
}

func (p *pipeEnd) Send(ctx context.Context, f *mxp.Frame) error {
	buf, err := mxp.AppendFrame(nil, f)
	if err != nil {
		return err
	}
	select {
	case p.out <- buf:
		return nil
	case <-p.closed:
		return io.ErrClosedPipe
	case <-p.peerClosed:
		return io.ErrClosedPipe
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipeEnd) Receive(ctx context.Context) (mxp.Frame, error) {
	select {
	case b := <-p.in:
		f, _, err := mxp.Decode(b)
		return f, err
	case <-p.closed:
		return mxp.Frame{}, io.EOF
	case <-p.peerClosed:
		return mxp.Frame{}, io.EOF
	case <-ctx.Done():
		return mxp.Frame{}, ctx.Err()
	}
}

func (p *pipeEnd) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

var echoID = mxp.AgentID{0xec, 0x40, 1}

// beat is what the fake registry saw of a heartbeat: its lifecycle report.
type beat struct{ Metadata map[string]string }

// fakeEdge plays the edge and registry for one agent over a pipe end.
type fakeEdge struct {
	t          *testing.T
	end        *pipeEnd
	mu         sync.Mutex
	registered []mxp.RegisterRequest
	beats      []beat
	finals     int
	events     []mxp.EventPayload
	records    []mxp.AgentRecord
	discovers  []mxp.DiscoverRequest // what the agent asked the registry
	noFilter   bool                  // answer discovery as a registry without accepting_only
	called     []mxp.AgentID         // targets of the agent's Calls
	replies    chan mxp.Frame        // Responses and Errors the agent sent to the edge's calls
	served     map[mxp.StreamID]bool // streams the edge opened into the agent
	traces     chan uint64           // trace ids of Calls the agent made
}

func newFakeEdge(t *testing.T, end *pipeEnd) *fakeEdge {
	e := &fakeEdge{t: t, end: end, replies: make(chan mxp.Frame, 64), traces: make(chan uint64, 64), served: map[mxp.StreamID]bool{}}
	go e.loop()
	return e
}

func (e *fakeEdge) send(f *mxp.Frame) {
	_ = e.end.Send(context.Background(), f)
}

func (e *fakeEdge) answer(req mxp.Frame, p mxp.Payload) {
	b, err := p.AppendPayload(nil)
	if err != nil {
		e.t.Errorf("edge: encoding answer: %v", err)
		return
	}
	e.send(&mxp.Frame{Type: mxp.TypeResponse, MessageID: req.MessageID, TraceID: req.TraceID, Payload: b})
}

func (e *fakeEdge) fail(req mxp.Frame, code mxp.ErrorCode, msg string) {
	ep := mxp.ErrorPayload{Error: msg, Code: code}
	b, _ := ep.AppendPayload(nil)
	e.send(&mxp.Frame{Type: mxp.TypeError, MessageID: req.MessageID, TraceID: req.TraceID, Payload: b})
}

func (e *fakeEdge) loop() {
	for {
		f, err := e.end.Receive(context.Background())
		if err != nil {
			return
		}
		f.Payload = bytes.Clone(f.Payload)
		switch f.Type {
		case mxp.TypeAgentRegister:
			r, err := mxp.DecodeRegisterRequest(f.Payload)
			if err != nil {
				e.fail(f, mxp.CodeInvalidPayload, err.Error())
				continue
			}
			e.mu.Lock()
			e.registered = append(e.registered, r)
			e.mu.Unlock()
			e.answer(f, &mxp.RegisterResponse{Success: true, AgentID: r.ID, Message: "ok", LeaseSeconds: 2, HeartbeatSeconds: 0.5})
		case mxp.TypeAgentHeartbeat:
			hb, err := mxp.DecodeHeartbeatRequest(f.Payload)
			var seen beat
			if err == nil && len(hb.Metadata) > 0 {
				err = jsonUnmarshal(hb.Metadata, &seen.Metadata)
			}
			if err != nil {
				e.fail(f, mxp.CodeInvalidPayload, err.Error())
				continue
			}
			e.mu.Lock()
			if f.Flags.Has(mxp.FlagFinal) {
				e.finals++
			} else {
				e.beats = append(e.beats, seen)
			}
			e.mu.Unlock()
			e.answer(f, &mxp.HeartbeatResponse{Success: true, AgentID: hb.AgentID, Timestamp: time.Now()})
		case mxp.TypeAgentDiscover:
			req, _ := mxp.DecodeDiscoverRequest(f.Payload)
			e.mu.Lock()
			e.discovers = append(e.discovers, req)
			var recs []mxp.AgentRecord
			for _, r := range e.records {
				if !req.AcceptingOnly || e.noFilter || r.Accepting == nil || *r.Accepting {
					recs = append(recs, r)
				}
			}
			e.mu.Unlock()
			e.answer(f, &mxp.DiscoverResponse{Agents: recs, Count: len(recs)})
		case mxp.TypeCall:
			p, err := mxp.DecodeCall(f.Payload)
			if err != nil {
				e.fail(f, mxp.CodeInvalidPayload, err.Error())
				continue
			}
			e.mu.Lock()
			e.called = append(e.called, p.Target)
			e.mu.Unlock()
			e.traces <- f.TraceID
			if p.Target != echoID {
				code := mxp.CodeUnreachable
				e.mu.Lock()
				for _, r := range e.records {
					if r.ID == p.Target && r.Accepting != nil && !*r.Accepting {
						code = mxp.CodeUnavailable // a record's suspended agent refuses the call
					}
				}
				e.mu.Unlock()
				e.fail(f, code, "no agent "+p.Target.String())
				continue
			}
			e.send(&mxp.Frame{Type: mxp.TypeResponse, MessageID: f.MessageID, TraceID: f.TraceID, Payload: append([]byte("echo:"), p.Data...)})
		case mxp.TypeEvent:
			p, _ := mxp.DecodeEvent(f.Payload)
			if p.Topic == topicSubscribe && f.Flags.Has(mxp.FlagRequiresAck) {
				if string(p.Data) == "bad pattern" {
					e.fail(f, mxp.CodeInvalidPayload, "bad pattern")
					continue
				}
				b, _ := (&mxp.AckPayload{MessageID: f.MessageID}).AppendPayload(nil)
				e.send(&mxp.Frame{Type: mxp.TypeAck, MessageID: f.MessageID, Payload: b})
				continue
			}
			e.mu.Lock()
			e.events = append(e.events, p)
			e.mu.Unlock()
		case mxp.TypeStreamOpen:
			p, _ := mxp.DecodeStreamOpen(f.Payload)
			if p.Target != echoID {
				e.fail(f, mxp.CodeUnreachable, "no agent")
				continue
			}
			e.send(&mxp.Frame{Type: mxp.TypeResponse, MessageID: f.MessageID, TraceID: f.TraceID}) // accepted
			b, _ := (&mxp.StreamChunkPayload{StreamID: p.StreamID, Data: append([]byte("open:"), p.Data...)}).AppendPayload(nil)
			e.send(&mxp.Frame{Type: mxp.TypeStreamChunk, MessageID: f.MessageID, Payload: b})
		case mxp.TypeStreamChunk:
			p, _ := mxp.DecodeStreamChunk(f.Payload)
			if e.isServed(p.StreamID) {
				e.replies <- f
				continue
			}
			b, _ := (&mxp.StreamChunkPayload{StreamID: p.StreamID, Data: bytes.ToUpper(p.Data)}).AppendPayload(nil)
			e.send(&mxp.Frame{Type: mxp.TypeStreamChunk, MessageID: f.MessageID, Payload: b})
		case mxp.TypeStreamClose:
			p, _ := mxp.DecodeStreamClose(f.Payload)
			if e.isServed(p.StreamID) {
				e.replies <- f
				continue
			}
			if p.Error != nil {
				continue
			}
			b, _ := (&mxp.StreamClosePayload{StreamID: p.StreamID}).AppendPayload(nil)
			e.send(&mxp.Frame{Type: mxp.TypeStreamClose, MessageID: f.MessageID, Payload: b})
		case mxp.TypeResponse, mxp.TypeError:
			e.replies <- f
		}
	}
}

func (e *fakeEdge) isServed(id mxp.StreamID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.served[id]
}

func (e *fakeEdge) nextReply(t *testing.T) mxp.Frame {
	t.Helper()
	select {
	case f := <-e.replies:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no reply from the agent")
		return mxp.Frame{}
	}
}

// callAgent delivers a Call from caller to the agent, as the edge does.
func (e *fakeEdge) callAgent(id uint64, caller mxp.AgentID, data string) {
	b, _ := (&mxp.CallPayload{Target: caller, TimeoutSeconds: 5, Data: []byte(data)}).AppendPayload(nil)
	e.send(&mxp.Frame{Type: mxp.TypeCall, MessageID: id, TraceID: 77, Payload: b})
}

func TestAgentOverFrames(t *testing.T) {
	a, err := New(Config{Name: "framer", Capabilities: []string{"echo.upper"}, Version: "1.2.3", Tags: []string{"test"},
		HeartbeatInterval: 5 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Call(context.Background(), "inference", nil); CodeOf(err) != CodeUnavailable {
		t.Fatalf("call before Run: %v", err)
	}
	a.Advertise("tool.shout", "echo.upper") // a duplicate of a configured one is ignored
	caller := mxp.AgentID{0xca, 0x11}
	a.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) {
		m, _ := MetaFrom(ctx)
		switch string(p) {
		case "who":
			return []byte(m.From), nil
		case "relay": // a call made while serving a call continues its trace
			return a.Call(ctx, echoID.String(), []byte("relayed"))
		case "deny":
			return nil, Errorf(CodeForbidden, "not for %s", m.From)
		}
		return bytes.ToUpper(p), nil
	})
	agentEnd, edgeEnd := framePipe()
	edge := newFakeEdge(t, edgeEnd)
	edge.records = []mxp.AgentRecord{{ID: echoID, Name: "echo", Status: mxp.StatusOnline}}
	done := make(chan error, 1)
	go func() { done <- a.RunConn(context.Background(), agentEnd) }()
	waitState(t, a, StateActive)

	edge.mu.Lock()
	reg := edge.registered[0]
	edge.mu.Unlock()
	if reg.ID.String() != a.ID() || reg.Name != "framer" || strings.Join(reg.Capabilities, ",") != "echo.upper,tool.shout" || reg.Metadata.Version != "1.2.3" {
		t.Fatalf("registration = %+v", reg)
	}

	// A capability advertised while running is registered by a new registration.
	a.Advertise("tool.late")
	for deadline := time.Now().Add(10 * time.Second); ; {
		edge.mu.Lock()
		last := edge.registered[len(edge.registered)-1]
		edge.mu.Unlock()
		if strings.Join(last.Capabilities, ",") == "echo.upper,tool.shout,tool.late" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late capability never advertised: %v", last.Capabilities)
		}
		time.Sleep(time.Millisecond)
	}

	// Calls into the agent.
	tests := []struct {
		data     string
		wantType mxp.MessageType
		want     string
	}{
		{"hello", mxp.TypeResponse, "HELLO"},
		{"who", mxp.TypeResponse, caller.String()},
		{"relay", mxp.TypeResponse, "echo:relayed"},
		{"deny", mxp.TypeError, "forbidden"},
	}
	for i, tt := range tests {
		edge.callAgent(uint64(100+i), caller, tt.data)
		f := edge.nextReply(t)
		got := string(f.Payload)
		if f.Type == mxp.TypeError {
			ep, err := mxp.DecodeErrorPayload(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			got = string(ep.Code)
		}
		if f.Type != tt.wantType || f.MessageID != uint64(100+i) || got != tt.want {
			t.Fatalf("%s: reply %s id %d %q, want %s %q", tt.data, f.Type, f.MessageID, got, tt.wantType, tt.want)
		}
		if tt.data == "relay" {
			if tr := <-edge.traces; tr != 77 {
				t.Fatalf("relayed call trace = %d, want the caller's 77", tr)
			}
		}
	}
	// A malformed Call gets an Error with the same message id, and the agent keeps going.
	edge.send(&mxp.Frame{Type: mxp.TypeCall, MessageID: 555, Payload: []byte{1, 2}})
	if f := edge.nextReply(t); f.Type != mxp.TypeError || f.MessageID != 555 {
		t.Fatalf("malformed call reply = %+v", f)
	}

	// Calls out of the agent.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := a.Call(ctx, echoID.String(), []byte("x")); err != nil || string(out) != "echo:x" {
		t.Fatalf("Call = %q, %v", out, err)
	}
	if _, err := a.Call(ctx, mxp.NewAgentID().String(), nil); CodeOf(err) != CodeUnreachable {
		t.Fatalf("call to nobody: %v", err)
	}
	if _, err := a.Call(ctx, "not-a-target", nil); CodeOf(err) != CodeInvalidArgument {
		t.Fatalf("bad target: %v", err)
	}
	if out, err := a.CallCapability(ctx, "echo.upper", []byte("y")); err != nil || string(out) != "echo:y" {
		t.Fatalf("CallCapability = %q, %v", out, err)
	}
	edge.mu.Lock()
	edge.records = nil
	edge.mu.Unlock()
	if _, err := a.CallCapability(ctx, "nothing", nil); CodeOf(err) != CodeNotFound {
		t.Fatalf("CallCapability without agents: %v", err)
	}
	if err := a.Publish(ctx, "build.done", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "bad topic", nil); CodeOf(err) != CodeInvalidArgument {
		t.Fatalf("bad topic: %v", err)
	}

	// A stream out of the agent.
	s, err := a.OpenStream(ctx, echoID.String(), mxp.StreamKindText, []byte("req"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b"} {
		if err := s.Send(ctx, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 3 {
		b, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	if got[0] != "open:req" || got[1] != "A" || got[2] != "B" {
		t.Fatalf("stream chunks = %q", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(ctx); CodeOf(err) != CodeCanceled {
		t.Fatalf("Recv after Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.OpenStream(ctx, mxp.NewAgentID().String(), mxp.StreamKindBytes, nil); CodeOf(err) != CodeUnreachable {
		t.Fatalf("stream to nobody: %v", err)
	}

	// Suspension shows in the heartbeat metadata.
	if err := a.Suspend(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		edge.mu.Lock()
		reported := len(edge.beats) > 0 && edge.beats[len(edge.beats)-1].Metadata["state"] == "suspended"
		edge.mu.Unlock()
		if reported {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("suspension never reported")
		}
		time.Sleep(time.Millisecond)
	}

	a.Retire()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	edge.mu.Lock()
	defer edge.mu.Unlock()
	if edge.finals != 1 || len(edge.events) != 1 || edge.events[0].Topic != "build.done" {
		t.Fatalf("finals %d, events %+v", edge.finals, edge.events)
	}
}

func TestLinkFailsPendingOnDisconnect(t *testing.T) {
	agentEnd, edgeEnd := framePipe()
	l := newLink(agentEnd, mxp.NewAgentID(), quietLogger())
	// Nobody answers; closing the far end fails the pending request at once.
	errc := make(chan error, 1)
	go func() {
		_, err := l.call(context.Background(), echoID, []byte("x"))
		errc <- err
	}()
	<-edgeEnd.in // the call left
	edgeEnd.Close()
	if err := <-errc; !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("pending call: %v", err)
	}
	if _, err := l.Recv(context.Background()); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("Recv after disconnect: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestAgentServesStreamsOverFrames(t *testing.T) {
	a := newTestAgent(t)
	a.HandleStream(func(ctx context.Context, s *Stream) error {
		for {
			b, err := s.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if string(b) == "fail" {
				return Errorf(CodeInvalidArgument, "no")
			}
			if err := s.Send(ctx, bytes.ToUpper(b)); err != nil {
				return err
			}
		}
	})
	agentEnd, edgeEnd := framePipe()
	edge := newFakeEdge(t, edgeEnd)
	done := make(chan error, 1)
	go func() { done <- a.RunConn(context.Background(), agentEnd) }()
	waitState(t, a, StateActive)

	open := func(id mxp.StreamID) {
		edge.mu.Lock()
		edge.served[id] = true
		edge.mu.Unlock()
		b, _ := (&mxp.StreamOpenPayload{StreamID: id, Target: mxp.AgentID{0xca}, Kind: mxp.StreamKindText}).AppendPayload(nil)
		edge.send(&mxp.Frame{Type: mxp.TypeStreamOpen, MessageID: 9, Payload: b})
	}
	chunk := func(id mxp.StreamID, data string) {
		b, _ := (&mxp.StreamChunkPayload{StreamID: id, Data: []byte(data)}).AppendPayload(nil)
		edge.send(&mxp.Frame{Type: mxp.TypeStreamChunk, MessageID: 9, Payload: b})
	}
	s1 := mxp.NewStreamID()
	open(s1)
	chunk(s1, "abc")
	f := edge.nextReply(t)
	p, err := mxp.DecodeStreamChunk(f.Payload)
	if err != nil || f.Type != mxp.TypeStreamChunk || p.StreamID != s1 || string(p.Data) != "ABC" {
		t.Fatalf("chunk back: %+v %v", f, err)
	}
	b, _ := (&mxp.StreamClosePayload{StreamID: s1}).AppendPayload(nil)
	edge.send(&mxp.Frame{Type: mxp.TypeStreamClose, MessageID: 9, Payload: b})
	f = edge.nextReply(t)
	if c, err := mxp.DecodeStreamClose(f.Payload); err != nil || f.Type != mxp.TypeStreamClose || c.Error != nil || c.StreamID != s1 {
		t.Fatalf("close back: %+v %v", f, err)
	}
	// A failing handler ends the stream with a StreamClose that carries the error.
	s2 := mxp.NewStreamID()
	open(s2)
	chunk(s2, "fail")
	f = edge.nextReply(t)
	c, err := mxp.DecodeStreamClose(f.Payload)
	if err != nil || c.Error == nil || c.Error.Code != mxp.ErrorCode(CodeInvalidArgument) {
		t.Fatalf("failed stream: %+v %v", c, err)
	}
	a.Retire()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAgentSubscribesAndReceivesEvents(t *testing.T) {
	a := newTestAgent(t)
	got := make(chan Event, 1)
	a.HandleEvent(func(ctx context.Context, ev Event) error { got <- ev; return nil })
	agentEnd, edgeEnd := framePipe()
	edge := newFakeEdge(t, edgeEnd)
	done := make(chan error, 1)
	go func() { done <- a.RunConn(context.Background(), agentEnd) }()
	waitState(t, a, StateActive)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Subscribe(ctx, "weather.>"); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(ctx, "bad pattern"); CodeOf(err) != CodeInvalidPayload {
		t.Fatalf("refused subscription: %v", err)
	}
	b, _ := (&mxp.EventPayload{Topic: "weather.oslo", Data: []byte("rain")}).AppendPayload(nil)
	edge.send(&mxp.Frame{Type: mxp.TypeEvent, MessageID: 3, Payload: b})
	select {
	case ev := <-got:
		if ev.Topic != "weather.oslo" || string(ev.Payload) != "rain" {
			t.Fatalf("event = %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("event not delivered")
	}
	a.Retire()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Register returns the heartbeat interval the registry's answer asks for.
func TestLinkRegisterReturnsHeartbeatInterval(t *testing.T) {
	agentEnd, edgeEnd := framePipe()
	newFakeEdge(t, edgeEnd)
	l := newLink(agentEnd, mxp.NewAgentID(), quietLogger())
	defer l.Close()
	every, err := l.Register(context.Background(), Registration{ID: mxp.NewAgentID().String(), Name: "n"})
	if err != nil || every != 500*time.Millisecond {
		t.Fatalf("Register = %v, %v; want 500ms", every, err)
	}
}

// Chunks that arrived before Close are not delivered after it: Recv after Close returns
// CodeCanceled even when the peer's chunks were buffered (before, it returned the next
// buffered chunk, which made TestInferenceStreamThroughTheEdge/close_early flaky).
func TestClientStreamCloseDropsBufferedChunks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	agentEnd, edgeEnd := framePipe()
	l := newLink(agentEnd, mxp.NewAgentID(), quietLogger())
	defer l.Close()
	defer edgeEnd.Close()
	s := &ClientStream{l: l, id: mxp.NewStreamID(), msgID: 7, chunkInbox: newChunkInbox(4), ended: make(chan struct{})}
	l.streams[s.id] = s
	for _, c := range []string{"a", "b", "c"} {
		s.push(ctx, []byte(c))
	}
	if b, err := s.Recv(ctx); err != nil || string(b) != "a" {
		t.Fatalf("first Recv = %q, %v", b, err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Recv(ctx); CodeOf(err) != CodeCanceled {
		t.Fatalf("Recv after Close = %q, %v; want canceled", b, err)
	}
	f, _, err := mxp.Decode(<-edgeEnd.in)
	if err != nil || f.Type != mxp.TypeStreamClose || f.MessageID != 7 {
		t.Fatalf("sent %+v, %v; want the StreamClose", f, err)
	}
	if l.clientStream(s.id) != nil {
		t.Fatal("the stream is still routed after Close")
	}
}
