package mxp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chanConn is a FrameConn over channels: what the Conn sends goes to out, what the test
// puts in in is received. receives counts Receive calls.
type chanConn struct {
	in, out  chan Frame
	closed   chan struct{}
	once     sync.Once
	receives atomic.Int64
	entered  chan struct{} // a signal per Receive call
}

func newChanConn() *chanConn {
	return &chanConn{in: make(chan Frame, 1024), out: make(chan Frame, 1024), closed: make(chan struct{}), entered: make(chan struct{}, 1024)}
}

func (p *chanConn) Send(ctx context.Context, f *Frame) error {
	select {
	case p.out <- *f:
		return nil
	case <-p.closed:
		return errors.New("closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *chanConn) Receive(ctx context.Context) (Frame, error) {
	p.receives.Add(1)
	p.entered <- struct{}{}
	select {
	case f := <-p.in:
		return f, nil
	case <-p.closed:
		return Frame{}, errors.New("pipe closed")
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

func (p *chanConn) Close() error { p.once.Do(func() { close(p.closed) }); return nil }

// Nothing reads for a Conn in the background: the connection is read only by the
// goroutines that wait for something from it.
func TestConnReadsOnlyWhenWaited(t *testing.T) {
	p := newChanConn()
	c := NewConn(p, 0)
	defer c.Close()
	p.in <- Frame{Type: TypeEvent, MessageID: 1}
	if n := p.receives.Load(); n != 0 {
		t.Fatalf("%d reads with nobody waiting", n)
	}
	f, err := c.Receive(context.Background())
	if err != nil || f.MessageID != 1 {
		t.Fatalf("Receive = %+v, %v", f, err)
	}
}

// Many concurrent requests, answered in reverse order with Responses, Errors and Acks,
// interleaved with frames for Receive: every request gets its own answer, Receive gets
// the rest in order, whoever happens to read.
func TestConnCorrelatesConcurrentRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := newChanConn()
	c := NewConn(p, 0)
	defer c.Close()
	const n = 64
	errs := make(chan error, n)
	for i := range n {
		go func() {
			typ := []Flags{0, FlagRequiresAck}[i%2]
			r, err := c.Call(ctx, &Frame{Type: TypeCall, Flags: typ, Payload: []byte{byte(i)}})
			switch {
			case i%3 == 2:
				if ErrorCodeFor(err) != CodeNotFound {
					err = fmt.Errorf("call %d: %v, want not_found", i, err)
				} else {
					err = nil
				}
			case err == nil && (len(r.Payload) != 1 || r.Payload[0] != byte(i)):
				err = fmt.Errorf("call %d got %v", i, r.Payload)
			}
			errs <- err
		}()
	}
	var calls []Frame
	for range n {
		calls = append(calls, <-p.out)
	}
	got := make(chan []uint64, 1)
	go func() { // the application's receive loop, running meanwhile
		var ids []uint64
		for len(ids) < n {
			f, err := c.Receive(ctx)
			if err != nil {
				break
			}
			ids = append(ids, f.MessageID)
		}
		got <- ids
	}()
	for k := n - 1; k >= 0; k-- {
		f := calls[k]
		i := int(f.Payload[0])
		switch {
		case i%3 == 2:
			ep := NewErrorPayload(&RemoteError{Code: CodeNotFound, Message: "no"})
			b, _ := ep.AppendPayload(nil)
			p.in <- Frame{Type: TypeError, MessageID: f.MessageID, Payload: b}
		case f.Flags&FlagRequiresAck != 0:
			p.in <- Frame{Type: TypeAck, MessageID: f.MessageID, Payload: f.Payload}
			p.in <- Frame{Type: TypeAck, MessageID: f.MessageID} // a second Ack is dropped
		default:
			p.in <- Frame{Type: TypeResponse, MessageID: f.MessageID, Payload: f.Payload}
		}
		p.in <- Frame{Type: TypeEvent, MessageID: uint64(1000 + n - 1 - k)}
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	ids := <-got
	for j, id := range ids {
		if id != uint64(1000+j) {
			t.Fatalf("Receive order %v", ids)
		}
	}
}

// A reader whose request is cancelled hands the reading on: the other request still
// gets its answer.
func TestConnCancelledReaderHandsOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := newChanConn()
	c := NewConn(p, 0)
	defer c.Close()
	actx, acancel := context.WithCancel(ctx)
	aerr := make(chan error, 1)
	go func() {
		_, err := c.Call(actx, &Frame{Type: TypeCall, MessageID: 1})
		aerr <- err
	}()
	<-p.out
	berr := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, &Frame{Type: TypeCall, MessageID: 2})
		berr <- err
	}()
	<-p.out
	acancel()
	if err := <-aerr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	p.in <- Frame{Type: TypeResponse, MessageID: 1} // late: nobody waits, goes to Receive
	p.in <- Frame{Type: TypeResponse, MessageID: 2}
	if err := <-berr; err != nil {
		t.Fatalf("second call: %v", err)
	}
	if f, err := c.Receive(ctx); err != nil || f.MessageID != 1 {
		t.Fatalf("late answer: %+v, %v", f, err)
	}
}

// With InboxSize frames waiting for Receive and nobody calling Receive (an agent whose
// receive loop stopped at retirement), a request still gets its answer: it reads past
// the full queue, and what it reads for Receive is shed, not queued, so memory stays
// bounded. Each shed frame is counted, and its sender is told when it awaits an answer
// (Error overloaded) or belongs to a stream (StreamClose overloaded). Before the fix the
// request stopped reading at the full queue and failed at its deadline.
func TestConnFullInboxStillAnswersRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := newChanConn()
	c := NewConn(p, 2)
	defer c.Close()
	sid := NewStreamID()
	chunk, _ := (&StreamChunkPayload{StreamID: sid, Data: []byte("x")}).AppendPayload(nil)
	ep := NewErrorPayload(&RemoteError{Code: CodeNotFound, Message: "stream ended"})
	stray, _ := ep.AppendPayload(nil)
	p.in <- Frame{Type: TypeEvent, MessageID: 10}
	p.in <- Frame{Type: TypeEvent, MessageID: 11}                         // the inbox is full
	p.in <- Frame{Type: TypeEvent, MessageID: 12}                         // shed, dropped
	p.in <- Frame{Type: TypeError, MessageID: 13, Payload: stray}         // answers nothing: shed, dropped
	p.in <- Frame{Type: TypeCall, MessageID: 14, TraceID: 99}             // shed: Error overloaded
	p.in <- Frame{Type: TypeStreamChunk, MessageID: 15, Payload: chunk}   // shed: StreamClose overloaded
	p.in <- Frame{Type: TypeEvent, Flags: FlagRequiresAck, MessageID: 16} // shed: Error overloaded
	done := make(chan error, 1)
	go func() {
		r, err := c.Call(ctx, &Frame{Type: TypeAgentHeartbeat, Flags: FlagFinal, MessageID: 1})
		if err == nil && r.Type != TypeResponse {
			err = fmt.Errorf("answer %+v", r)
		}
		done <- err
	}()
	if f := <-p.out; f.MessageID != 1 {
		t.Fatalf("sent %+v", f)
	}
	p.in <- Frame{Type: TypeResponse, MessageID: 1}
	if err := <-done; err != nil {
		t.Fatalf("deregister behind a full inbox: %v", err)
	}
	if n := c.ShedFrames(); n != 5 {
		t.Fatalf("ShedFrames = %d, want 5", n)
	}
	for _, want := range []struct {
		typ MessageType
		id  uint64
	}{{TypeError, 14}, {TypeStreamClose, 15}, {TypeError, 16}} {
		f := <-p.out
		if f.Type != want.typ || f.MessageID != want.id {
			t.Fatalf("shed answer %+v, want a %s for %d", f, want.typ, want.id)
		}
		switch f.Type {
		case TypeError:
			ep, err := DecodeErrorPayload(f.Payload)
			if err != nil || ep.Code != CodeOverloaded {
				t.Fatalf("shed answer %+v, %v", ep, err)
			}
		case TypeStreamClose:
			cp, err := DecodeStreamClose(f.Payload)
			if err != nil || cp.StreamID != sid || cp.Error == nil || cp.Error.Code != CodeOverloaded {
				t.Fatalf("shed stream answer %+v, %v", cp, err)
			}
		}
	}
	select { // the Events and the stray Error were dropped unanswered
	case f := <-p.out:
		t.Fatalf("unexpected frame %+v", f)
	default:
	}
	for want := uint64(10); want <= 11; want++ {
		if f, err := c.Receive(ctx); err != nil || f.MessageID != want {
			t.Fatalf("Receive = %+v, %v; want %d", f, err, want)
		}
	}
}

// When the FrameConn fails, waiting requests and Receive fail with ErrConnClosed.
func TestConnFrameConnFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := newChanConn()
	c := NewConn(p, 0)
	errs := make(chan error, 2)
	go func() { _, err := c.Call(ctx, &Frame{Type: TypeCall}); errs <- err }()
	go func() { _, err := c.Receive(ctx); errs <- err }()
	<-p.out
	p.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrConnClosed) {
			t.Fatalf("after failure: %v", err)
		}
	}
	<-c.Done()
	if c.Err() == nil {
		t.Fatal("Err nil after failure")
	}
	c.Close()
}

// FuzzConnCorrelator feeds a Conn an arbitrary interleaving of answers (some duplicated),
// Acks and other frames while requests wait and a Receive loop runs: every request gets
// its own answer, and Receive gets every frame that answers no waiting request, in
// order (a duplicate Response or Error is such a frame; a duplicate Ack is dropped).
// Whoever reads, nothing is lost or misrouted.
func FuzzConnCorrelator(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{9, 9, 9, 0, 0, 0, 3, 255, 128})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 256 {
			script = script[:256]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		p := newChanConn()
		p.entered = make(chan struct{}, 4096)
		c := NewConn(p, 4096)
		defer c.Close()
		const calls = 8
		got := make(chan error, calls)
		for i := range calls {
			go func() {
				flags := Flags(0)
				if i%2 == 1 {
					flags = FlagRequiresAck
				}
				r, err := c.Call(ctx, &Frame{Type: TypeCall, Flags: flags, MessageID: uint64(i + 1)})
				if err == nil && (r.MessageID != uint64(i+1) || len(r.Payload) != 1 || r.Payload[0] != byte(i)) {
					err = fmt.Errorf("call %d got %+v", i+1, r)
				}
				got <- err
			}()
		}
		for range calls {
			<-p.out
		}
		var frames, want []Frame // what the peer sends; what Receive must return, in order
		answered := make([]bool, calls)
		answer := func(i int, typ MessageType) {
			fr := Frame{Type: typ, MessageID: uint64(i + 1), Payload: []byte{byte(i)}}
			frames = append(frames, fr)
			switch {
			case !answered[i]:
				answered[i] = true
			case typ != TypeAck:
				want = append(want, fr)
			}
		}
		for k, b := range script {
			switch i := int(b>>1) % calls; {
			case b&1 == 0:
				typ := TypeResponse
				if i%2 == 1 {
					typ = TypeAck
				}
				answer(i, typ)
			default:
				fr := Frame{Type: TypeEvent, MessageID: uint64(1000 + k)}
				frames, want = append(frames, fr), append(want, fr)
			}
		}
		for i := range calls { // every request is answered in the end
			if !answered[i] {
				answer(i, TypeResponse)
			}
		}
		received := make(chan []Frame, 1)
		go func() { // the application's receive loop, reading along with the requests
			var rs []Frame
			for len(rs) < len(want) {
				r, err := c.Receive(ctx)
				if err != nil {
					break
				}
				rs = append(rs, r)
			}
			received <- rs
		}()
		for _, fr := range frames {
			p.in <- fr
		}
		for range calls {
			if err := <-got; err != nil {
				t.Fatal(err)
			}
		}
		rs := <-received
		if len(rs) != len(want) {
			t.Fatalf("Receive got %d frames, want %d", len(rs), len(want))
		}
		for j, w := range want {
			if r := rs[j]; r.Type != w.Type || r.MessageID != w.MessageID {
				t.Fatalf("Receive %d = %+v; want %+v", j, r, w)
			}
		}
	})
}
