package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Dispatcher defaults, used when the matching DispatcherConfig field is zero.
const (
	DefaultWorkers      = 16
	DefaultQueueSize    = 256
	DefaultQueueWait    = 50 * time.Millisecond
	DefaultStreamBuffer = 64
	DefaultSendTimeout  = 5 * time.Second
)

// Inbound is a message that arrived for the agent.
type Inbound struct {
	Meta
	Payload []byte
}

// Outbound is a message the agent sends: a Response or Error to a Call, or a stream
// chunk, close or error.
type Outbound struct {
	Kind      Kind
	MessageID uint64 // the id of the Call (or StreamOpen) this answers
	TraceID   uint64
	To        string // the peer's agent id
	StreamID  string // stream kinds
	Payload   []byte
	Err       *Error // KindError: what went wrong
}

// DispatcherConfig configures a Dispatcher. Zero values mean the documented defaults.
type DispatcherConfig struct {
	Workers      int           // handlers running at once; default 16
	QueueSize    int           // accepted messages waiting for a worker; default 256
	QueueWait    time.Duration // how long Dispatch waits for queue (or stream buffer) space before refusing with CodeOverloaded; default 50ms
	StreamBuffer int           // chunks buffered per open stream; default 64
	SendTimeout  time.Duration // bound on sending one reply; default 5s
	// Inline runs the Call and Event handlers on the goroutine that calls Dispatch (an
	// agent's: the one that reads the connection) instead of a worker: no goroutine
	// hand-off between the socket and the handler, but while one runs no other message
	// is read. Only for handlers that return within microseconds and never block (an
	// echo); streams always run on workers. Default false.
	Inline bool

	Call   CallHandler   // nil: calls are answered with CodeNotFound
	Event  EventHandler  // nil: events are dropped (and counted)
	Stream StreamHandler // nil: streams are refused with CodeNotFound

	// Send delivers replies (required). It must be safe for concurrent use.
	Send func(ctx context.Context, out Outbound) error
	// Admit, if set, is asked before a Call, Event or StreamOpen is queued; a non-nil
	// *Error refuses the message (a suspended agent answers CodeUnavailable this way).
	Admit func(m Meta) *Error
	// Logger receives handler panics, failed events and failed sends; default slog.Default().
	Logger *slog.Logger
	// Tracer, when set, gives each handled Call, Event and stream a span ("agent.handle",
	// see tracing.go), in the handler's context; nil: no spans.
	Tracer trace.Tracer
}

// DispatcherStats counts what a Dispatcher did. All counters only grow; Queued is a
// gauge.
type DispatcherStats struct {
	Queued     int    // accepted messages waiting for a worker now (at most QueueSize)
	Received   uint64 // messages passed to Dispatch
	Completed  uint64 // handlers that returned nil
	Failed     uint64 // handlers that returned an error
	Panics     uint64 // handlers that panicked
	Overloaded uint64 // messages refused because the queue or a stream buffer was full
	Refused    uint64 // messages refused by Admit, shutdown or a missing handler
	SendErrors uint64 // replies that could not be sent
	Stray      uint64 // Errors from the peer that answered no stream being served, dropped
}

// Dispatcher runs an agent's handlers on a fixed pool of workers fed by a bounded queue:
// when the queue is full, Dispatch waits up to QueueWait and then refuses the message with
// CodeOverloaded, so a flood never turns into unbounded goroutines or memory. A handler
// panic becomes an Error reply and a log line. Create it with NewDispatcher; stop it with
// Shutdown.
type Dispatcher struct {
	cfg    DispatcherConfig
	log    *slog.Logger
	queue  chan job
	root   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers, and inline handlers running

	mu      sync.RWMutex // guards closing and sends on queue
	closing bool

	streamsMu sync.Mutex
	streams   map[string]*Stream

	received, completed, failed, panics, overloaded, refused, sendErrors, stray atomic.Uint64
}

type job struct {
	in     Inbound
	stream *Stream
}

// NewDispatcher starts cfg.Workers workers. cfg.Send is required.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Send == nil {
		return nil, errors.New("agent: DispatcherConfig.Send is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = DefaultQueueWait
	}
	if cfg.StreamBuffer <= 0 {
		cfg.StreamBuffer = DefaultStreamBuffer
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	root, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{cfg: cfg, log: log, queue: make(chan job, cfg.QueueSize), root: root, cancel: cancel, streams: map[string]*Stream{}}
	d.wg.Add(cfg.Workers)
	for range cfg.Workers {
		go d.worker()
	}
	return d, nil
}

// Stats returns the counters so far.
func (d *Dispatcher) Stats() DispatcherStats {
	return DispatcherStats{
		Queued:   len(d.queue),
		Received: d.received.Load(), Completed: d.completed.Load(), Failed: d.failed.Load(),
		Panics: d.panics.Load(), Overloaded: d.overloaded.Load(), Refused: d.refused.Load(),
		SendErrors: d.sendErrors.Load(), Stray: d.stray.Load(),
	}
}

// Dispatch hands one inbound message to the agent. Calls, events and stream opens are
// queued for a worker; stream chunks and closes go to their open stream; an Error (the
// peer refusing a chunk the agent sent) ends the stream it answers, whose handler's Recv
// returns that error, or is counted (Stray) and dropped. When the message
// cannot be taken (queue full after QueueWait, refused by Admit, shutting down, no
// handler, unknown stream), Dispatch sends the peer an Error (for calls and streams) and
// returns the same *Error. It never blocks longer than QueueWait plus one send.
func (d *Dispatcher) Dispatch(in Inbound) error {
	d.received.Add(1)
	switch in.Kind {
	case KindStreamChunk, KindStreamClose:
		return d.routeToStream(in)
	case KindError:
		return d.streamRefused(in)
	case KindCall, KindEvent, KindStreamOpen:
	default:
		return d.refuse(in, Errorf(CodeInvalidArgument, "agent does not accept %s messages", in.Kind))
	}
	if e := d.missingHandler(in.Kind); e != nil {
		return d.refuse(in, e)
	}
	if d.cfg.Admit != nil {
		if e := d.cfg.Admit(in.Meta); e != nil {
			return d.refuse(in, e)
		}
	}
	j := job{in: in}
	if d.cfg.Inline && in.Kind != KindStreamOpen {
		if !d.startInline() {
			return d.refuse(in, Errorf(CodeUnavailable, "agent is shutting down"))
		}
		defer d.wg.Done()
		d.run(j)
		return nil
	}
	if in.Kind == KindStreamOpen {
		if in.StreamID == "" {
			return d.refuse(in, Errorf(CodeInvalidArgument, "stream open without a stream id"))
		}
		j.stream = newStream(in.Meta, in.Payload, d.cfg.StreamBuffer, d.send)
		d.streamsMu.Lock()
		if _, dup := d.streams[in.StreamID]; dup {
			d.streamsMu.Unlock()
			return d.refuse(in, Errorf(CodeInvalidArgument, "stream %q is already open", in.StreamID))
		}
		d.streams[in.StreamID] = j.stream
		d.streamsMu.Unlock()
	}
	if err := d.enqueue(j); err != nil {
		if j.stream != nil {
			d.dropStream(in.StreamID)
		}
		return d.refuse(in, err)
	}
	return nil
}

// startInline counts an inline handler in wg, as a worker, so that Shutdown waits for it;
// false once Shutdown began.
func (d *Dispatcher) startInline() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closing {
		return false
	}
	d.wg.Add(1)
	return true
}

func (d *Dispatcher) missingHandler(k Kind) *Error {
	switch {
	case k == KindCall && d.cfg.Call == nil && d.cfg.Stream != nil:
		// Said so that a caller (mxp call) can point to the stream it serves.
		return Errorf(CodeNotFound, "this agent serves no calls, only streams")
	case k == KindCall && d.cfg.Call == nil:
		return Errorf(CodeNotFound, "this agent serves no calls")
	case k == KindEvent && d.cfg.Event == nil:
		return Errorf(CodeNotFound, "this agent handles no events")
	case k == KindStreamOpen && d.cfg.Stream == nil:
		return Errorf(CodeNotFound, "this agent serves no streams")
	}
	return nil
}

func (d *Dispatcher) enqueue(j job) *Error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closing {
		return Errorf(CodeUnavailable, "agent is shutting down")
	}
	select {
	case d.queue <- j:
		return nil
	default:
	}
	t := time.NewTimer(d.cfg.QueueWait)
	defer t.Stop()
	select {
	case d.queue <- j:
		return nil
	case <-t.C:
		d.overloaded.Add(1)
		return Errorf(CodeOverloaded, "agent is at capacity (%d running, %d queued)", d.cfg.Workers, d.cfg.QueueSize)
	}
}

// routeToStream delivers a chunk or close to its open stream.
func (d *Dispatcher) routeToStream(in Inbound) error {
	d.streamsMu.Lock()
	s := d.streams[in.StreamID]
	d.streamsMu.Unlock()
	if s == nil {
		return d.refuse(in, Errorf(CodeNotFound, "no open stream %q", in.StreamID))
	}
	if in.Kind == KindStreamClose {
		s.closeInput(nil)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.QueueWait)
	defer cancel()
	if err := s.push(ctx, in.Payload); err != nil {
		e := AsError(err)
		if e.Code == CodeOverloaded {
			d.overloaded.Add(1)
			s.closeInput(e) // the handler sees the failure; the peer gets the Error
		}
		return d.refuse(in, e)
	}
	return nil
}

// streamRefused ends the served stream whose open had in's message id (the id its chunks
// carry) with the Error in carries: the peer refused a chunk, so the stream is over there
// and the handler should stop (its Recv returns the error). An Error that answers no
// served stream is counted and dropped: it is never answered (an Error never answers an
// Error), so a peer and an agent cannot refuse each other in a loop.
func (d *Dispatcher) streamRefused(in Inbound) error {
	var s *Stream
	d.streamsMu.Lock()
	for _, x := range d.streams {
		if x.meta.MessageID == in.MessageID {
			s = x
			break
		}
	}
	d.streamsMu.Unlock()
	err := AsError(remoteError(in.Payload))
	if s == nil {
		d.stray.Add(1)
		return err
	}
	s.closeInput(err)
	return nil
}

func (d *Dispatcher) dropStream(id string) {
	d.streamsMu.Lock()
	delete(d.streams, id)
	d.streamsMu.Unlock()
}

// refuse answers a message that will not be handled. Events get no reply.
func (d *Dispatcher) refuse(in Inbound, e *Error) error {
	if e.Code != CodeOverloaded {
		d.refused.Add(1)
	}
	if in.Kind != KindEvent {
		d.reply(in.Meta, Outbound{Kind: KindError, Err: e})
	}
	return e
}

func (d *Dispatcher) worker() {
	defer d.wg.Done()
	for j := range d.queue {
		d.run(j)
	}
}

// run serves one job on the calling worker.
func (d *Dispatcher) run(j job) {
	in := j.in
	ctx := WithMeta(d.root, in.Meta)
	var cancel context.CancelFunc
	if !in.Deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, in.Deadline)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	if j.stream != nil {
		defer d.dropStream(in.StreamID)
		defer j.stream.closeInput(Errorf(CodeCanceled, "stream handler returned"))
	}
	ctx, span := startHandle(ctx, d.cfg.Tracer, in.Meta)
	var err error
	defer func() { endSpan(span, err) }()
	if err = ctx.Err(); err != nil { // expired while queued, or the agent gave up
		d.failed.Add(1)
		if d.root.Err() != nil {
			err = Errorf(CodeUnavailable, "agent stopped before handling the message")
		}
		if in.Kind != KindEvent {
			d.reply(in.Meta, Outbound{Kind: KindError, Err: AsError(err)})
		}
		return
	}

	var payload []byte
	payload, err = d.invoke(ctx, j)
	switch {
	case err == nil:
		d.completed.Add(1)
	case CodeOf(err) == CodeInternal && errors.Is(err, errPanicked):
		// counted and logged by invoke
	default:
		d.failed.Add(1)
	}
	switch in.Kind {
	case KindCall:
		if err != nil {
			d.reply(in.Meta, Outbound{Kind: KindError, Err: AsError(err)})
			return
		}
		d.reply(in.Meta, Outbound{Kind: KindResponse, Payload: payload})
	case KindStreamOpen:
		if err != nil {
			d.reply(in.Meta, Outbound{Kind: KindError, Err: AsError(err)})
			return
		}
		d.reply(in.Meta, Outbound{Kind: KindStreamClose})
	case KindEvent:
		if err != nil {
			d.log.Warn("agent: event handler failed", append(logIDs(in.TraceID, in.MessageID), "topic", in.Topic, "from", in.From, "code", string(CodeOf(err)), "error", err)...)
		}
	}
}

var errPanicked = errors.New("handler panicked")

// invoke runs the handler for j, turning a panic into an *Error with CodeInternal.
func (d *Dispatcher) invoke(ctx context.Context, j job) (payload []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			d.panics.Add(1)
			d.log.Error("agent: handler panicked", append(logIDs(j.in.TraceID, j.in.MessageID), "kind", j.in.Kind.String(), "from", j.in.From,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))...)
			payload, err = nil, &Error{Code: CodeInternal, Message: "handler panicked", Err: errPanicked}
		}
	}()
	switch j.in.Kind {
	case KindCall:
		return d.cfg.Call(ctx, j.in.Payload)
	case KindEvent:
		return nil, d.cfg.Event(ctx, Event{Topic: j.in.Topic, Payload: j.in.Payload})
	default:
		return nil, d.cfg.Stream(ctx, j.stream)
	}
}

// reply fills in the addressing from m and sends out within SendTimeout.
func (d *Dispatcher) reply(m Meta, out Outbound) {
	out.MessageID, out.TraceID, out.To = m.MessageID, m.TraceID, m.From
	if out.StreamID == "" {
		out.StreamID = m.StreamID
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.SendTimeout)
	defer cancel()
	if err := d.send(ctx, out); err != nil {
		d.log.Warn("agent: reply not sent", append(logIDs(out.TraceID, out.MessageID), "kind", out.Kind.String(), "to", out.To, "error", err)...)
	}
}

func (d *Dispatcher) send(ctx context.Context, out Outbound) error {
	err := d.cfg.Send(ctx, out)
	if err != nil {
		d.sendErrors.Add(1)
	}
	return err
}

// Shutdown stops taking new calls, events and streams (they are refused with
// CodeUnavailable), lets queued and running handlers finish, and returns when they have.
// If ctx ends first, the handlers' contexts are cancelled, messages still queued are
// answered with CodeUnavailable, and Shutdown returns ctx's error without waiting for
// handlers that ignore cancellation. Chunks for streams already open are still delivered
// while draining. Calling Shutdown again waits again.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	if !d.closing {
		d.closing = true
		close(d.queue)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		return fmt.Errorf("agent: shutdown: handlers still running: %w", ctx.Err())
	}
}
