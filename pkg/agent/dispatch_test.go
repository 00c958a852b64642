package agent

import (
	"github.com/mxp-mesh/mesh/pkg/mxp"

	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// outbox records what a Dispatcher sends.
type outbox struct {
	mu  sync.Mutex
	out []Outbound
	ch  chan Outbound
}

func newOutbox() *outbox { return &outbox{ch: make(chan Outbound, 1024)} }

func (o *outbox) send(_ context.Context, out Outbound) error {
	o.mu.Lock()
	o.out = append(o.out, out)
	o.mu.Unlock()
	o.ch <- out
	return nil
}

func (o *outbox) next(t *testing.T) Outbound {
	t.Helper()
	select {
	case out := <-o.ch:
		return out
	case <-time.After(10 * time.Second):
		t.Fatal("no outbound message")
		return Outbound{}
	}
}

func newTestDispatcher(t *testing.T, cfg DispatcherConfig) (*Dispatcher, *outbox, *bytes.Buffer) {
	t.Helper()
	box := newOutbox()
	var logs bytes.Buffer
	var logMu sync.Mutex
	cfg.Send = box.send
	cfg.Logger = slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logs}, nil))
	d, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d, box, &logs
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func call(id uint64, payload string) Inbound {
	return Inbound{Meta: Meta{Kind: KindCall, MessageID: id, TraceID: id * 10, From: "caller-1"}, Payload: []byte(payload)}
}

func TestDispatchCalls(t *testing.T) {
	handler := func(ctx context.Context, p []byte) ([]byte, error) {
		m, _ := MetaFrom(ctx)
		switch string(p) {
		case "meta":
			_, hasDeadline := ctx.Deadline()
			return []byte(m.From + "/" + m.Kind.String() + "/" + map[bool]string{true: "deadline", false: "none"}[hasDeadline]), nil
		case "typed":
			return nil, Errorf(CodeForbidden, "not you")
		case "plain":
			return nil, errors.New("disk on fire")
		case "panic":
			panic("kaboom")
		}
		return append([]byte("echo:"), p...), nil
	}
	d, box, logs := newTestDispatcher(t, DispatcherConfig{Call: handler, Workers: 2})
	tests := []struct {
		name     string
		in       Inbound
		wantKind Kind
		want     string // payload, or error code
	}{
		{"response", call(1, "hi"), KindResponse, "echo:hi"},
		{"meta and deadline", func() Inbound {
			in := call(2, "meta")
			in.Deadline = time.Now().Add(time.Hour)
			return in
		}(), KindResponse, "caller-1/call/deadline"},
		{"typed error", call(3, "typed"), KindError, string(CodeForbidden)},
		{"plain error", call(4, "plain"), KindError, string(CodeInternal)},
		{"panic", call(5, "panic"), KindError, string(CodeInternal)},
		{"expired deadline", func() Inbound {
			in := call(6, "hi")
			in.Deadline = time.Now().Add(-time.Second)
			return in
		}(), KindError, string(CodeTimeout)},
		{"still serving after a panic", call(7, "again"), KindResponse, "echo:again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := d.Dispatch(tt.in); err != nil {
				t.Fatal(err)
			}
			out := box.next(t)
			if out.Kind != tt.wantKind || out.MessageID != tt.in.MessageID || out.TraceID != tt.in.TraceID || out.To != "caller-1" {
				t.Fatalf("out = %+v", out)
			}
			got := string(out.Payload)
			if out.Kind == KindError {
				got = string(out.Err.Code)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	// The ids as the services write them: call(5) is message 5 of trace 50.
	if !strings.Contains(logs.String(), `"trace_id":"0000000000000032","msg_id":"0000000000000005"`) {
		t.Fatalf("panic line without the message's ids: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"panic":"kaboom"`) || !strings.Contains(logs.String(), "handler panicked") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
	st := d.Stats()
	if st.Panics != 1 || st.Received != 7 || st.Completed != 3 || st.Failed != 3 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestDispatchBackpressure(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	d, box, _ := newTestDispatcher(t, DispatcherConfig{
		Workers: 1, QueueSize: 2, QueueWait: time.Millisecond,
		Call: func(ctx context.Context, p []byte) ([]byte, error) {
			started <- struct{}{}
			<-release
			return p, nil
		},
	})
	before := runtime.NumGoroutine()
	if err := d.Dispatch(call(1, "a")); err != nil {
		t.Fatal(err)
	}
	<-started // the only worker is busy
	for i := uint64(2); i <= 3; i++ {
		if err := d.Dispatch(call(i, "q")); err != nil {
			t.Fatalf("queued call %d refused: %v", i, err)
		}
	}
	if st := d.Stats(); st.Queued != 2 {
		t.Fatalf("queue depth %d with the worker busy and two calls waiting, want 2", st.Queued)
	}
	// The queue is full: the next ones are refused, not piled up.
	for i := uint64(4); i <= 50; i++ {
		err := d.Dispatch(call(i, "x"))
		if CodeOf(err) != CodeOverloaded {
			t.Fatalf("call %d: err = %v, want overloaded", i, err)
		}
		if out := box.next(t); out.Kind != KindError || out.Err.Code != CodeOverloaded || out.MessageID != i {
			t.Fatalf("call %d: reply = %+v", i, out)
		}
	}
	if g := runtime.NumGoroutine(); g > before+2 {
		t.Fatalf("goroutines grew from %d to %d under load", before, g)
	}
	close(release)
	got := map[uint64]bool{}
	for range 3 {
		out := box.next(t)
		if out.Kind != KindResponse {
			t.Fatalf("accepted call failed: %+v", out)
		}
		got[out.MessageID] = true
	}
	if !got[1] || !got[2] || !got[3] {
		t.Fatalf("accepted calls answered: %v", got)
	}
	if st := d.Stats(); st.Overloaded != 47 || st.Queued != 0 {
		t.Fatalf("overloaded = %d, queued = %d", st.Overloaded, st.Queued)
	}
}

func TestDispatchRefusals(t *testing.T) {
	suspended := true
	var mu sync.Mutex
	events := make(chan Event, 4)
	d, box, logs := newTestDispatcher(t, DispatcherConfig{
		Call: func(ctx context.Context, p []byte) ([]byte, error) { return p, nil },
		Event: func(ctx context.Context, ev Event) error {
			events <- ev
			if ev.Topic == "bad" {
				return errors.New("cannot digest")
			}
			return nil
		},
		Admit: func(m Meta) *Error {
			mu.Lock()
			defer mu.Unlock()
			if suspended && m.Kind == KindCall {
				return Errorf(CodeUnavailable, "agent is suspended")
			}
			return nil
		},
	})
	tests := []struct {
		name string
		in   Inbound
		want Code
	}{
		{"admit refuses", call(1, "x"), CodeUnavailable},
		{"no stream handler", Inbound{Meta: Meta{Kind: KindStreamOpen, MessageID: 2, StreamID: "s"}}, CodeNotFound},
		{"chunk for unknown stream", Inbound{Meta: Meta{Kind: KindStreamChunk, MessageID: 3, StreamID: "nope"}}, CodeNotFound},
		{"outbound kind", Inbound{Meta: Meta{Kind: KindResponse, MessageID: 4}}, CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Dispatch(tt.in)
			if CodeOf(err) != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if out := box.next(t); out.Kind != KindError || out.Err.Code != tt.want || out.MessageID != tt.in.MessageID {
				t.Fatalf("reply = %+v", out)
			}
		})
	}
	mu.Lock()
	suspended = false
	mu.Unlock()
	if err := d.Dispatch(call(5, "ok")); err != nil {
		t.Fatal(err)
	}
	if out := box.next(t); out.Kind != KindResponse {
		t.Fatalf("resumed call: %+v", out)
	}
	// Events get no reply; a failing one is logged.
	for _, topic := range []string{"good", "bad"} {
		if err := d.Dispatch(Inbound{Meta: Meta{Kind: KindEvent, Topic: topic}, Payload: []byte("e")}); err != nil {
			t.Fatal(err)
		}
		<-events
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "cannot digest") {
		t.Fatalf("event failure not logged: %s", logs.String())
	}
	if len(box.ch) != 0 {
		t.Fatalf("events produced replies: %+v", <-box.ch)
	}
	// Without an event handler, events are refused silently.
	d2, box2, _ := newTestDispatcher(t, DispatcherConfig{})
	if err := d2.Dispatch(Inbound{Meta: Meta{Kind: KindEvent, Topic: "t"}}); CodeOf(err) != CodeNotFound {
		t.Fatalf("event without handler: %v", err)
	}
	if err := d2.Dispatch(call(1, "x")); CodeOf(err) != CodeNotFound {
		t.Fatalf("call without handler: %v", err)
	}
	if out := box2.next(t); out.Kind != KindError || out.MessageID != 1 {
		t.Fatalf("only the call gets a reply: %+v", out)
	}
	if _, err := NewDispatcher(DispatcherConfig{}); err == nil {
		t.Fatal("dispatcher without Send accepted")
	}
}

func TestDispatchStreams(t *testing.T) {
	d, box, _ := newTestDispatcher(t, DispatcherConfig{
		StreamBuffer: 2, QueueWait: time.Millisecond,
		Stream: func(ctx context.Context, s *Stream) error {
			for {
				chunk, err := s.Recv(ctx)
				if errors.Is(err, io.EOF) {
					return s.Send(ctx, []byte("bye"))
				}
				if err != nil {
					return err
				}
				if string(chunk) == "fail" {
					return Errorf(CodeInvalidArgument, "no failing")
				}
				if err := s.Send(ctx, bytes.ToUpper(chunk)); err != nil {
					return err
				}
			}
		},
	})
	open := func(id string) Inbound {
		return Inbound{Meta: Meta{Kind: KindStreamOpen, MessageID: 9, From: "peer", StreamID: id}}
	}
	chunk := func(id, p string) Inbound {
		return Inbound{Meta: Meta{Kind: KindStreamChunk, StreamID: id, From: "peer"}, Payload: []byte(p)}
	}
	// A normal stream: every chunk echoed in order, then the handler's goodbye and a close.
	if err := d.Dispatch(open("s1")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b", "c"} {
		if err := d.Dispatch(chunk("s1", c)); err != nil {
			t.Fatal(err)
		}
		if out := box.next(t); out.Kind != KindStreamChunk || string(out.Payload) != strings.ToUpper(c) || out.StreamID != "s1" || out.To != "peer" {
			t.Fatalf("chunk %s: %+v", c, out)
		}
	}
	if err := d.Dispatch(Inbound{Meta: Meta{Kind: KindStreamClose, StreamID: "s1"}}); err != nil {
		t.Fatal(err)
	}
	if out := box.next(t); string(out.Payload) != "bye" {
		t.Fatalf("goodbye: %+v", out)
	}
	if out := box.next(t); out.Kind != KindStreamClose || out.StreamID != "s1" || out.MessageID != 9 {
		t.Fatalf("close: %+v", out)
	}
	// A handler error ends the stream with an Error.
	if err := d.Dispatch(open("s2")); err != nil {
		t.Fatal(err)
	}
	if err := d.Dispatch(chunk("s2", "fail")); err != nil {
		t.Fatal(err)
	}
	if out := box.next(t); out.Kind != KindError || out.Err.Code != CodeInvalidArgument || out.StreamID != "s2" {
		t.Fatalf("stream error: %+v", out)
	}
	// Bad opens.
	if err := d.Dispatch(open("")); CodeOf(err) != CodeInvalidArgument {
		t.Fatalf("open without id: %v", err)
	}
	box.next(t)
}

func TestDispatchStreamOverflow(t *testing.T) {
	gate := make(chan struct{})
	failed := make(chan error, 1)
	d, box, _ := newTestDispatcher(t, DispatcherConfig{
		StreamBuffer: 1, QueueWait: time.Millisecond,
		Stream: func(ctx context.Context, s *Stream) error {
			<-gate // not reading
			for {
				if _, err := s.Recv(ctx); err != nil {
					failed <- err
					return err
				}
			}
		},
	})
	if err := d.Dispatch(Inbound{Meta: Meta{Kind: KindStreamOpen, StreamID: "s"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Dispatch(Inbound{Meta: Meta{Kind: KindStreamChunk, StreamID: "s"}}); err != nil {
		t.Fatal(err)
	}
	err := d.Dispatch(Inbound{Meta: Meta{Kind: KindStreamChunk, StreamID: "s"}})
	if CodeOf(err) != CodeOverloaded {
		t.Fatalf("overflow: %v", err)
	}
	if out := box.next(t); out.Kind != KindError || out.Err.Code != CodeOverloaded {
		t.Fatalf("overflow reply: %+v", out)
	}
	close(gate)
	if err := <-failed; CodeOf(err) != CodeOverloaded {
		t.Fatalf("handler saw %v, want the overload", err)
	}
}

func TestDispatchShutdown(t *testing.T) {
	inFlight := make(chan struct{})
	finish := make(chan struct{})
	d, box, _ := newTestDispatcher(t, DispatcherConfig{
		Workers: 2,
		Call: func(ctx context.Context, p []byte) ([]byte, error) {
			if string(p) != "slow" {
				return p, nil
			}
			close(inFlight)
			<-finish
			return []byte("finished"), nil
		},
	})
	if err := d.Dispatch(call(1, "slow")); err != nil {
		t.Fatal(err)
	}
	<-inFlight
	done := make(chan error, 1)
	go func() { done <- d.Shutdown(context.Background()) }()
	// Intake stops at once.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := d.Dispatch(call(2, "late"))
		if CodeOf(err) == CodeUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late call not refused: %v", err)
		}
		box.next(t) // a reply from a race before closing; try again
		runtime.Gosched()
	}
	if out := box.next(t); out.Err == nil || out.Err.Code != CodeUnavailable {
		t.Fatalf("late reply: %+v", out)
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := box.next(t); out.Kind != KindResponse || string(out.Payload) != "finished" {
		t.Fatalf("in-flight call lost: %+v", out)
	}

	// A deadline that passes cancels handlers that are still running.
	d2, box2, _ := newTestDispatcher(t, DispatcherConfig{Call: func(ctx context.Context, p []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	if err := d2.Dispatch(call(1, "stubborn")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := d2.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown past deadline: %v", err)
	}
	if out := box2.next(t); out.Kind != KindError || out.Err.Code != CodeCanceled {
		t.Fatalf("cancelled handler reply: %+v", out)
	}
}

func BenchmarkDispatchCall(b *testing.B) {
	var wg sync.WaitGroup
	d, err := NewDispatcher(DispatcherConfig{
		Workers: 4, QueueSize: 1024, QueueWait: time.Second,
		Call: func(ctx context.Context, p []byte) ([]byte, error) { return p, nil },
		Send: func(context.Context, Outbound) error { wg.Done(); return nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	in := call(1, "payload")
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		if err := d.Dispatch(in); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
}

// With Inline, a Call's handler runs on the goroutine that calls Dispatch: the reply is
// sent before Dispatch returns (no worker hand-off); a panic is still an Error reply;
// Shutdown waits for an inline handler that is running, and refuses Calls after it.
func TestDispatchInline(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	handler := func(ctx context.Context, p []byte) ([]byte, error) {
		switch string(p) {
		case "panic":
			panic("kaboom")
		case "block":
			close(started)
			<-release
		}
		return p, nil
	}
	d, box, _ := newTestDispatcher(t, DispatcherConfig{Call: handler, Inline: true})
	if err := d.Dispatch(call(1, "hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-box.ch:
		if out.Kind != KindResponse || string(out.Payload) != "hi" || out.MessageID != 1 {
			t.Fatalf("reply %+v", out)
		}
	default:
		t.Fatal("Dispatch returned before the inline handler replied")
	}
	if err := d.Dispatch(call(2, "panic")); err != nil {
		t.Fatal(err)
	}
	if out := <-box.ch; out.Kind != KindError || out.Err.Code != CodeInternal {
		t.Fatalf("panic reply %+v", out)
	}
	go func() { _ = d.Dispatch(call(3, "block")) }()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- d.Shutdown(context.Background()) }()
	for { // Shutdown began: Calls are refused from now on
		if err := d.Dispatch(call(4, "late")); CodeOf(err) == CodeUnavailable {
			break
		}
		<-box.ch // a Call that got in before Shutdown began: its reply
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned while an inline handler ran: %v", err)
	default:
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.Completed < 2 || s.Panics != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// An Error from the peer with a served stream's message id (the edge refusing a chunk of
// a stream it had already ended) ends that stream: the handler's Recv returns the error,
// so a handler that watches it (a hosted model) stops instead of sending on. An Error
// that answers no served stream is counted (Stray) and dropped, never answered.
func TestDispatchStreamRefusedByPeer(t *testing.T) {
	failed := make(chan error, 1)
	running := make(chan struct{})
	d, box, _ := newTestDispatcher(t, DispatcherConfig{
		Stream: func(ctx context.Context, s *Stream) error {
			close(running)
			_, err := s.Recv(ctx)
			failed <- err
			return err
		},
	})
	if err := d.Dispatch(Inbound{Meta: Meta{Kind: KindStreamOpen, MessageID: 42, StreamID: "s"}}); err != nil {
		t.Fatal(err)
	}
	<-running
	refusal, _ := (&mxp.ErrorPayload{Error: "no open stream s on this connection", Code: mxp.CodeNotFound}).AppendPayload(nil)
	if err := d.Dispatch(Inbound{Meta: Meta{Kind: KindError, MessageID: 42}, Payload: refusal}); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; CodeOf(err) != CodeNotFound {
		t.Fatalf("handler's Recv: %v, want the peer's not_found", err)
	}
	if out := box.next(t); out.Kind != KindError || out.MessageID != 42 { // the handler's end of the stream
		t.Fatalf("reply %+v", out)
	}
	if err := d.Dispatch(Inbound{Meta: Meta{Kind: KindError, MessageID: 43}, Payload: refusal}); CodeOf(err) != CodeNotFound {
		t.Fatalf("stray Error: %v", err)
	}
	if st := d.Stats(); st.Stray != 1 || st.Refused != 0 {
		t.Fatalf("stats %+v, want 1 stray and nothing refused", st)
	}
	select {
	case out := <-box.ch:
		t.Fatalf("a stray Error was answered: %+v", out)
	default:
	}
}
