package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// Deps are what New is given: the shared service resources and the transports to serve.
// The plaintext listener is built from Config.CompatAddr; other transports (the secure
// one) are passed here.
type Deps struct {
	service.Deps
	Transports []Transport
}

// Edge is the edge service. Build it with New, then Run it.
type Edge struct {
	cfg     atomic.Pointer[Config]
	id      string
	log     *slog.Logger
	nc      *nats.Conn
	m       *metrics
	limiter *security.Limiter
	given   []Transport                 // Deps.Transports, bound by the caller
	ts      atomic.Pointer[[]Transport] // every transport, once Run has bound them
	tracer  trace.Tracer                // nil unless tracing.Enabled(Deps.Tracer): see tracing.go

	mu       sync.RWMutex // read-locked on the per-frame lookups (Frame, owner)
	sessions map[Peer]*session
	agents   map[mxp.AgentID]*session // agent id → the session that registered it
	// perSource counts the agents carried per source address (see sourceOf), for
	// Limits.MaxAgentsPerAddress.
	perSource map[netip.Addr]int
	streams   map[streamKey]*stream

	agentMsgs chan *nats.Msg // calls, probes and stream opens for carried agents
	replies   *replyRouter
	services  map[mxp.AgentID]string

	ctx       context.Context // cancelled when Run stops
	cancel    context.CancelFunc
	wg        sync.WaitGroup // session loops, workers and background bus requests
	serving   atomic.Bool
	servingCh chan struct{} // closed once Run serves (Serving)
}

// New builds an edge from cfg with no I/O: it validates cfg and sets up the edge's state
// and metrics, but binds no socket and reads no file. Run binds the transports (the
// plaintext listener when cfg.CompatAddr is set, the secure one unless cfg.Addr is "off",
// loading or creating cfg.KeyFile and reading cfg.AllowKeysFile), then serves; Serving is
// closed once they are bound, and only then do Addrs and PublicKey name them. Transports
// in deps are bound by the caller and served as given.
func New(cfg Config, deps Deps) (*Edge, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Conn == nil {
		return nil, errors.New("edge: Deps.Conn (the bus connection) is required")
	}
	if cfg.CompatAddr == "" && cfg.Addr == "off" && len(deps.Transports) == 0 {
		return nil, errors.New("edge: no transport to serve (set compat_addr or pass a secure transport)")
	}
	d := deps.Deps.WithDefaults("edge")
	if cfg.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.ID = hex.EncodeToString(b[:])
	}
	e := &Edge{
		id:        cfg.ID,
		log:       d.Logger.With("edge_id", cfg.ID),
		nc:        d.Conn,
		m:         newMetrics(d.Metrics),
		tracer:    d.Tracer,
		given:     deps.Transports,
		sessions:  map[Peer]*session{},
		agents:    map[mxp.AgentID]*session{},
		perSource: map[netip.Addr]int{},
		streams:   map[streamKey]*stream{},
		agentMsgs: make(chan *nats.Msg, 65536),
		services:  map[mxp.AgentID]string{},
		servingCh: make(chan struct{}),
	}
	if !tracing.Enabled(e.tracer) {
		e.tracer = nil
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.cfg.Store(&cfg)
	e.m.registerQueues(d.Metrics, e)
	e.replies = newReplyRouter(e.nc, cfg.ID)
	for name, subj := range cfg.Services {
		id, _ := mxp.ServiceByName(name)
		e.services[id] = subj
	}
	e.limiter = security.NewLimiter(security.LimiterConfig{Rate: cfg.Limits.RatePerSecond, Burst: cfg.Limits.RateBurst})
	check := "edge" // an edge per process unless it is an Instance: then named as its metrics are
	if n := d.Metrics.Service(); n != "" {
		check = n
	}
	d.Health.Add(check, func(context.Context) error {
		if !e.serving.Load() {
			return errors.New("edge: not serving")
		}
		if !e.nc.IsConnected() {
			return errors.New("edge: bus disconnected")
		}
		return nil
	})
	return e, nil
}

// ListenError is a transport that could not be bound (ListenSecure, ListenCompat), or
// whose key or allow list Run could not read: Run serves nothing then.
type ListenError struct {
	Transport string // "secure" or "compat"
	Addr      string
	Err       error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("edge: %s listener %q: %v", e.Transport, e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// bind opens the transports cfg names (the only I/O of the edge's start: sockets, the
// key file, the allow-keys file), after them the given ones. On error it closes what it
// opened and returns a *ListenError.
func (e *Edge) bind() ([]Transport, error) {
	cfg := e.cfg.Load()
	var ts []Transport
	fail := func(name, addr string, err error) ([]Transport, error) {
		for _, t := range ts {
			_ = t.Close()
		}
		var le *ListenError
		if errors.As(err, &le) {
			return nil, err
		}
		return nil, &ListenError{Transport: name, Addr: addr, Err: err}
	}
	if cfg.CompatAddr != "" {
		ct, err := ListenCompat(CompatConfig{Addr: cfg.CompatAddr, IdleTimeout: cfg.IdleTimeout,
			OnDrop: func(reason string) { e.m.dropped.WithLabelValues(reason).Inc() }})
		if err != nil {
			return fail("compat", cfg.CompatAddr, err)
		}
		ts = append(ts, ct)
	}
	if cfg.Addr != "off" {
		key, _, err := LoadOrCreateKey(cfg.KeyFile)
		if err != nil {
			return fail("secure", cfg.Addr, err)
		}
		allow, err := cfg.allowPeer()
		if err != nil {
			return fail("secure", cfg.Addr, err)
		}
		tcfg := cfg.Secure.transportConfig(cfg.IdleTimeout)
		tcfg.DeadPeerTimeout = cfg.DeadPeerTimeout
		tcfg.AllowPeer = allow
		tcfg.MaxMessageSize = cfg.Limits.MaxMessageBytes // enforced from each frame's length prefix
		st, err := ListenSecure(cfg.Addr, key, tcfg)
		if err != nil {
			return fail("secure", cfg.Addr, err)
		}
		ts = append(ts, st)
	}
	return append(ts, e.given...), nil
}

// Serving is closed once Run has bound every transport and serves them (readiness turns
// true then); Addrs and PublicKey name the bound transports from then on. It is never
// closed when Run fails to bind: callers wait on it and on Run's return.
func (e *Edge) Serving() <-chan struct{} { return e.servingCh }

// transports are the bound transports (none before Run binds them).
func (e *Edge) transports() []Transport {
	if p := e.ts.Load(); p != nil {
		return *p
	}
	return nil
}

// PublicKey is the secure transport's public key, which clients pin: "" when it is off or
// not yet bound (see Serving).
func (e *Edge) PublicKey() string {
	for _, t := range e.transports() {
		if st, ok := t.(*SecureTransport); ok {
			return st.PublicKey().String()
		}
	}
	return ""
}

// ID is the edge's id on the bus.
func (e *Edge) ID() string { return e.id }

// Config returns the configuration in use.
func (e *Edge) Config() Config { return *e.cfg.Load() }

// Reload applies the live settings of cfg (limits and timeouts); the others keep their
// running values.
func (e *Edge) Reload(cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	cur := *e.cfg.Load()
	cur.Limits.MaxMessageBytes = cfg.Limits.MaxMessageBytes
	cur.Limits.MaxInFlight = cfg.Limits.MaxInFlight
	cur.Limits.RatePerSecond = cfg.Limits.RatePerSecond
	cur.Limits.RateBurst = cfg.Limits.RateBurst
	cur.Limits.MaxAgents = cfg.Limits.MaxAgents
	cur.Limits.MaxAgentsPerAddress = cfg.Limits.MaxAgentsPerAddress
	cur.Limits.MaxSubscriptions = cfg.Limits.MaxSubscriptions
	cur.Limits.MaxStreams = cfg.Limits.MaxStreams
	cur.DefaultCallTimeout, cur.MaxCallTimeout, cur.RegistryTimeout = cfg.DefaultCallTimeout, cfg.MaxCallTimeout, cfg.RegistryTimeout
	e.limiter.SetRate(cur.Limits.RatePerSecond, cur.Limits.RateBurst)
	e.cfg.Store(&cur)
	for _, t := range e.transports() { // before Run binds them, Run applies cur itself
		if st, ok := t.(*SecureTransport); ok {
			st.SetMaxMessageSize(cur.Limits.MaxMessageBytes)
		}
	}
	return nil
}

// Addrs returns the bound address of each transport, by transport name: empty until
// Serving is closed.
func (e *Edge) Addrs() map[string]string {
	out := map[string]string{}
	for _, t := range e.transports() {
		out[t.Name()] = t.Addr().String()
	}
	return out
}

// Name implements lifecycle.Service.
func (e *Edge) Name() string { return "edge" }

// Run binds the transports (a failure is a *ListenError, and nothing is served), serves
// them until ctx ends, then closes every connection (deregistering the agents they carried
// and ending their streams) and returns. It runs once.
func (e *Edge) Run(ctx context.Context) error {
	if ctx.Err() != nil { // a process that will not run: bind nothing, release what was given
		for _, t := range e.given {
			_ = t.Close()
		}
		e.cancel()
		return nil
	}
	ts, err := e.bind()
	if err != nil {
		e.cancel()
		return err
	}
	e.ts.Store(&ts)
	// A Reload that ran before the store did not see these transports; apply the limit
	// it stored (see Reload).
	for _, t := range ts {
		if st, ok := t.(*SecureTransport); ok {
			st.SetMaxMessageSize(e.cfg.Load().Limits.MaxMessageBytes)
		}
	}
	closeAll := func() {
		for _, t := range ts {
			_ = t.Close()
		}
	}
	streamSub, err := e.nc.Subscribe(bus.EdgeSubject(e.id, EdgeStreamWildcard), e.handleStreamMsg)
	if err != nil {
		closeAll()
		return fmt.Errorf("edge: subscribe stream subject: %w", err)
	}
	_ = streamSub.SetPendingLimits(1<<20, 1<<30)
	if err := e.replies.start(); err != nil {
		_ = streamSub.Unsubscribe()
		closeAll()
		return fmt.Errorf("edge: subscribe reply subject: %w", err)
	}
	workers := 4
	for range workers {
		e.wg.Go(e.agentWorker)
	}
	e.wg.Go(e.sweep)
	errs := make(chan error, len(ts))
	for _, t := range ts {
		go func() { errs <- t.Serve(e) }()
		e.log.Info("edge listening", "transport", t.Name(), "addr", t.Addr().String())
	}
	if pk := e.PublicKey(); pk != "" {
		e.log.Info("edge public key", "public_key", pk)
	}
	e.serving.Store(true)
	close(e.servingCh)
	var runErr error
	serving := len(ts)
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		serving--
	}
	e.serving.Store(false)
	closeAll()
	_ = streamSub.Unsubscribe()
	// Sessions ended by the transports' Close deregister their agents in the background;
	// give that work the drain deadline.
	dctx, cancel := lifecycle.DrainContext(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		// A transport's Serve returns after Close once its peers' readers have ended; they
		// call Closed, which adds the session's last work to e.wg, so e.wg.Wait comes after
		// every Serve has returned (before, an Add could race the Wait).
		e.cancel() // first, as before: nothing a reader waits on outlives it
		for range serving {
			<-errs
		}
		e.replies.stop()
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-dctx.Done():
		e.log.Warn("edge: shutdown deadline passed with work in flight")
	}
	return runErr
}

// EdgeStreamWildcard is the verb pattern of an edge's stream subjects (stream.o for the
// opener's end, stream.a for the acceptor's).
const EdgeStreamWildcard = bus.EdgeVerbStream + ".*"

// Opened implements Handler. Contract: the only place that adds to e.sessions; the
// transport calls it once per peer, before any Frame of that peer.
func (e *Edge) Opened(p Peer) {
	s := newSession(e, p)
	e.mu.Lock()
	e.sessions[p] = s
	e.mu.Unlock()
	tname := transportName(p)
	e.m.sessions.WithLabelValues(tname).Inc()
	e.m.sessionsTotal.WithLabelValues(tname).Inc()
	if s.queue != nil {
		e.wg.Go(s.loop)
	}
}

// Frame implements Handler: the cheap checks (size, rate) happen here on the transport's
// goroutine, so a flood never reaches the queue; the rest in the session's loop.
func (e *Edge) Frame(p Peer, msg []byte) {
	e.mu.RLock()
	s := e.sessions[p]
	e.mu.RUnlock()
	if s == nil {
		return
	}
	cfg := e.cfg.Load()
	if len(msg) > cfg.Limits.MaxMessageBytes {
		s.reject(peekID(msg), peekType(msg), mxp.CodeTooLarge,
			fmt.Sprintf("frame of %d bytes is over the edge's limit of %d", len(msg), cfg.Limits.MaxMessageBytes))
		return
	}
	if cfg.Limits.RatePerSecond > 0 && !s.answersDelivery(msg) && !e.limiter.Allow(p.ID()) {
		e.m.dropped.WithLabelValues("rate_limited").Inc()
		s.reject(peekID(msg), peekType(msg), mxp.CodeRateLimited,
			fmt.Sprintf("over the rate limit of %g frames/s", cfg.Limits.RatePerSecond))
		return
	}
	if s.queue == nil { // the peer's own reader goroutine: handle it here, in order
		if s.ctx.Err() == nil {
			s.handle(inFrame{raw: msg, at: time.Now()})
		}
		return
	}
	// Frames whose handling never blocks skip the queue when the session is idle: one
	// goroutine hand-off less on the hot path, the order kept. Handled before Frame
	// returns, such a frame needs no copy of msg: what its handling keeps past the call
	// (a registration's payload) it copies itself.
	if nonBlocking(msg) && s.queue.tryInline() {
		s.handle(inFrame{raw: msg, at: time.Now()})
		s.queue.done()
		return
	}
	buf := make([]byte, len(msg))
	copy(buf, msg)
	if !s.queue.push(inFrame{raw: buf, at: time.Now()}) {
		e.m.dropped.WithLabelValues("queue_full").Inc()
		s.reject(peekID(msg), peekType(msg), mxp.CodeUnavailable, "the connection's queue is full; slow down")
	}
}

// Datagram implements DatagramHandler. The edge takes MXP frames only as reliable
// messages: a datagram is unordered and may be lost, so a request in one could not be
// answered dependably, and handling it beside the connection's ordered frames would break
// their order. Each datagram is counted (dropped_frames_total{reason="datagram"}) and,
// when the connection's token bucket allows, answered on the reliable stream with an
// Error carrying its message id: invalid_frame, or the decode error's code when it is not
// a frame. Over the rate it is only counted (also as rate_limited), so a datagram flood
// cannot turn into reliable traffic from the edge.
func (e *Edge) Datagram(p Peer, msg []byte) {
	e.m.dropped.WithLabelValues(dropDatagram).Inc()
	e.mu.RLock()
	s := e.sessions[p]
	e.mu.RUnlock()
	if s == nil || s.ctx.Err() != nil {
		return
	}
	if cfg := e.cfg.Load(); cfg.Limits.RatePerSecond > 0 && !e.limiter.Allow(p.ID()) {
		e.m.dropped.WithLabelValues("rate_limited").Inc()
		return
	}
	code, text := mxp.CodeInvalidFrame, "the edge takes MXP frames as reliable messages only; this one came as an unreliable datagram and was not handled"
	if _, _, err := mxp.Decode(msg); err != nil {
		code, text = mxp.ErrorCodeFor(err), "datagram: "+err.Error()
	}
	s.failDelivery(peekMessageType(msg), peekID(msg), code, "the agent answered in a datagram, which the edge does not take: "+text)
	s.reject(peekID(msg), peekType(msg), code, text)
}

// FrameTooLarge implements tooLargeHandler: the transport refused a frame over
// Limits.MaxMessageBytes from its length prefix; prefix is its start (the frame header).
func (e *Edge) FrameTooLarge(p Peer, prefix []byte, size uint64) {
	e.mu.RLock()
	s := e.sessions[p]
	e.mu.RUnlock()
	if s == nil {
		return
	}
	text := fmt.Sprintf("frame of %d bytes is over the edge's limit of %d", size, e.cfg.Load().Limits.MaxMessageBytes)
	s.failDelivery(peekMessageType(prefix), mxp.PeekMessageID(prefix), mxp.CodeTooLarge, "the agent's answer was refused: "+text)
	s.reject(mxp.PeekMessageID(prefix), peekType(prefix), mxp.CodeTooLarge, text)
}

// Closed implements Handler. Contract: the only place that removes from e.sessions; the
// session is closed (session.close) after it is unreachable from e.sessions.
func (e *Edge) Closed(p Peer, err error) {
	e.mu.Lock()
	s := e.sessions[p]
	delete(e.sessions, p)
	e.mu.Unlock()
	if s == nil {
		return
	}
	e.m.sessions.WithLabelValues(transportName(p)).Dec()
	e.m.peerCloses.WithLabelValues(transportName(p), closeReason(err)).Inc()
	s.close(err)
}

// closeReason labels why a peer's connection ended, for the peer_closes_total metric.
func closeReason(err error) string {
	switch {
	case errors.Is(err, transport.ErrPeerUnreachable):
		return "unreachable"
	case errors.Is(err, transport.ErrIdleTimeout), errors.Is(err, ErrIdle):
		return "idle"
	case errors.Is(err, transport.ErrPeerClosed):
		return "peer_closed"
	case err == nil, errors.Is(err, ErrPeerClosed), errors.Is(err, transport.ErrClosed):
		return "closed"
	}
	return "error"
}

func transportName(p Peer) string {
	if p.Identity() == "" {
		return "compat"
	}
	return "secure"
}

// sweep expires calls delivered to agents whose caller's deadline passed, and idle
// streams.
func (e *Edge) sweep() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var sessions []*session // reused: with many connections a fresh slice per tick is garbage
	for {
		select {
		case <-e.ctx.Done():
			return
		case now := <-tick.C:
			e.mu.Lock()
			sessions = sessions[:0]
			for _, s := range e.sessions {
				sessions = append(sessions, s)
			}
			var idle []*stream
			limit := now.Add(-e.cfg.Load().StreamIdleTimeout).UnixNano()
			for _, st := range e.streams {
				if st.last.Load() < limit {
					idle = append(idle, st)
				}
			}
			e.mu.Unlock()
			for _, s := range sessions {
				s.expireDeliveries(now)
			}
			clear(sessions) // keep no closed session alive until the next tick
			if cap(sessions) > 2*len(sessions)+1024 {
				sessions = nil // many connections went: let the large array go
			}
			e.pollTransportStats()
			for _, st := range idle {
				st.abort(&mxp.ErrorPayload{Error: "stream idle for too long", Code: mxp.CodeTimeout}, true)
			}
		}
	}
}

// nonBlocking reports whether handling a frame of msg's type never waits (requests go to
// the bus asynchronously); stream frames wait for credit and Events may wait for a
// subscription to be confirmed.
func nonBlocking(msg []byte) bool {
	if len(msg) < 5 {
		return true // rejected at once
	}
	switch mxp.MessageType(msg[4]) {
	case mxp.TypeCall, mxp.TypeResponse, mxp.TypeError, mxp.TypeAck,
		mxp.TypeAgentRegister, mxp.TypeAgentHeartbeat, mxp.TypeAgentDiscover:
		return true
	}
	return !mxp.MessageType(msg[4]).Valid()
}

// peekID returns the message id of a frame that may not decode (0 when too short).
func peekID(b []byte) uint64 {
	if len(b) < 16 {
		return 0
	}
	return uint64(b[8]) | uint64(b[9])<<8 | uint64(b[10])<<16 | uint64(b[11])<<24 |
		uint64(b[12])<<32 | uint64(b[13])<<40 | uint64(b[14])<<48 | uint64(b[15])<<56
}

// peekMessageType returns a frame's type byte (0, not a valid type, when too short).
func peekMessageType(b []byte) mxp.MessageType {
	if len(b) < 5 {
		return 0
	}
	return mxp.MessageType(b[4])
}

// peekType returns the label of a frame's type byte ("invalid" when not a valid type).
func peekType(b []byte) string {
	if len(b) < 5 || !mxp.MessageType(b[4]).Valid() {
		return "invalid"
	}
	return mxp.MessageType(b[4]).String()
}
