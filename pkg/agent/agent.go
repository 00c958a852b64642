package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// DefaultShutdownTimeout bounds a graceful shutdown when Config.ShutdownTimeout is zero.
const DefaultShutdownTimeout = 10 * time.Second

// Config describes an agent. Zero values mean the documented defaults.
type Config struct {
	Name         string   // required: a human-readable name
	ID           string   // the agent id (a UUID); default: a new random one
	Capabilities []string // what the agent offers, for discovery ("review.code")
	Version      string
	Description  string
	Tags         []string

	// The edge to connect to (Run): its UDP address and its public key (base64, as `mxp
	// dev` prints it). Each that is empty defaults to $MXP_EDGE / $MXP_EDGE_KEY (EnvEdge,
	// EnvEdgeKey); what is still missing is read from DataDir/edge.json, which a running
	// `mxp dev` writes. KeyFile holds this agent's private key, its identity on
	// the mesh (created with mode 0600 on first run; empty: a new key every run).
	EdgeAddr string
	EdgeKey  string
	KeyFile  string
	DataDir  string // default ".mxp"
	// HandshakeTimeout bounds each connection attempt's handshake with the edge (Run);
	// default the transport's (transport.DefaultHandshakeTimeout, 10 s).
	HandshakeTimeout time.Duration

	HeartbeatInterval time.Duration // default: the interval the registry asks for (10s if it does not say)
	Workers           int           // handlers running at once; default 16
	QueueSize         int           // accepted messages waiting for a worker; default 256
	// InlineHandlers runs the Call and Event handlers on the goroutine that reads the
	// connection (DispatcherConfig.Inline): no hand-off to a worker, but nothing else is
	// read while one runs. Only for handlers that return within microseconds and never
	// block, such as `mxp agent echo`'s.
	InlineHandlers  bool
	ShutdownTimeout time.Duration // how long Retire lets in-flight handlers finish; default 10s

	Logger *slog.Logger // default slog.Default()

	// TracerProvider, when set, traces the agent: a span for each Call it makes and each
	// message its handlers serve, in the mesh's trace (see tracing.go). Nil: no spans, at
	// no cost. Pass otel.GetTracerProvider() to use the application's global provider.
	TracerProvider trace.TracerProvider
}

// meshConn is the agent's connection to the mesh as the runtime needs it: the registry
// operations, the inbound message stream, and replies. The MXP connection to the edge
// implements it; tests use an in-memory one.
type meshConn interface {
	registryClient
	// Recv returns the next message for the agent; an error ends the connection.
	Recv(ctx context.Context) (Inbound, error)
	// Send sends a reply or a stream message.
	Send(ctx context.Context, out Outbound) error
	Close() error
}

// Agent is one agent: its lifecycle, handlers and registration. Build it with New, add
// handlers, then Run it. Handlers must be set before Run.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	lc     *Lifecycle
	tracer trace.Tracer // from Config.TracerProvider; nil: no spans

	mu        sync.Mutex
	extraCaps []string // added by Advertise
	call      CallHandler
	event     EventHandler
	stream    StreamHandler
	running   bool
	retire    chan struct{} // closed by Retire
	retireMu  sync.Once

	disp atomic.Pointer[Dispatcher] // set while serving
	reg  atomic.Pointer[registrar]  // set while serving
	out  atomic.Value               // outbound: the connection for calls out, set by Run/RunConn
}

// New checks cfg and returns an agent in StateInit. The name, capabilities, version,
// description and tags are checked with the rules the edge and the registry apply
// (mxp.RegisterRequest.Validate: docs/protocol.md, "Names and capabilities"), so an agent
// that New accepts is never refused registration for them; the error is an *Error with
// the code of the field at fault (invalid_name, invalid_capability, ...).
func New(cfg Config) (*Agent, error) {
	if cfg.ID == "" {
		cfg.ID = uuid.NewString()
	} else if _, err := uuid.Parse(cfg.ID); err != nil {
		return nil, fmt.Errorf("agent: Config.ID %q is not a UUID: %w", cfg.ID, err)
	}
	id, _ := mxp.ParseAgentID(cfg.ID)
	req := mxp.RegisterRequest{ID: id, Name: cfg.Name, Capabilities: cfg.Capabilities,
		Metadata: mxp.AgentMetadata{Version: cfg.Version, Description: cfg.Description, Tags: cfg.Tags}}
	if err := req.Validate(); err != nil {
		return nil, &Error{Code: CodeOf(err), Message: "agent: Config: " + err.Error(), Err: err}
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("agent_id", cfg.ID, "agent", cfg.Name)
	a := &Agent{cfg: cfg, log: log, lc: NewLifecycle(), retire: make(chan struct{})}
	if cfg.TracerProvider != nil {
		a.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	return a, nil
}

// ID returns the agent id.
func (a *Agent) ID() string { return a.cfg.ID }

// Name returns the agent's name.
func (a *Agent) Name() string { return a.cfg.Name }

// Lifecycle returns the agent's lifecycle, to read its state, add hooks or subscribe.
func (a *Agent) Lifecycle() *Lifecycle { return a.lc }

// State returns the lifecycle state.
func (a *Agent) State() State { return a.lc.State() }

// Advertise adds capabilities to those the agent registers (Config.Capabilities), for
// example "tool.<name>" for each tool an llm.Toolbox serves. Duplicates are ignored. On a
// running agent the registration is renewed at once, so the mesh learns them without
// waiting for the next heartbeat. A capability the mesh would refuse (mxp.CheckCapability),
// or more than mxp.MaxCapabilities in all, is an *Error (invalid_capability,
// too_many_capabilities) and none of the call's capabilities is added.
func (a *Agent) Advertise(capabilities ...string) error {
	for _, c := range capabilities {
		if err := mxp.CheckCapability(c); err != nil {
			return &Error{Code: CodeOf(err), Message: "agent: Advertise: " + err.Error(), Err: err}
		}
	}
	a.mu.Lock()
	if n := len(a.cfg.Capabilities) + len(a.extraCaps) + len(capabilities); n > mxp.MaxCapabilities {
		a.mu.Unlock()
		return Errorf(mxp.CodeTooManyCapabilities, "agent: Advertise: %d capabilities in all (max %d)", n, mxp.MaxCapabilities)
	}
	for _, c := range capabilities {
		if !slices.Contains(a.extraCaps, c) {
			a.extraCaps = append(a.extraCaps, c)
		}
	}
	a.mu.Unlock()
	if r := a.reg.Load(); r != nil {
		r.renewNow()
	}
	return nil
}

// HandleCall sets the handler for Calls. It panics when the agent is already running.
func (a *Agent) HandleCall(h CallHandler) { a.setHandler(func() { a.call = h }) }

// HandleEvent sets the handler for Events. It panics when the agent is already running.
func (a *Agent) HandleEvent(h EventHandler) { a.setHandler(func() { a.event = h }) }

// HandleStream sets the handler for streams peers open. It panics when the agent is
// already running.
func (a *Agent) HandleStream(h StreamHandler) { a.setHandler(func() { a.stream = h }) }

func (a *Agent) setHandler(set func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running {
		panic("agent: handlers must be set before Run")
	}
	set()
}

// Suspend stops taking new calls (they are answered with CodeUnavailable) while staying
// registered; heartbeats report the suspension. Calls already running finish.
func (a *Agent) Suspend() error { _, err := a.lc.Fire(EventSuspend); return err }

// Resume takes calls again after Suspend.
func (a *Agent) Resume() error { _, err := a.lc.Fire(EventResume); return err }

// Retire asks a running agent to shut down gracefully: Run stops taking new work, lets
// in-flight handlers finish within Config.ShutdownTimeout, deregisters, closes the
// connection and returns. Retire returns at once; it is safe to call more than once.
func (a *Agent) Retire() {
	a.retireMu.Do(func() { close(a.retire) })
}

// advertised is what the agent registers: its configured capabilities and those added
// with Advertise.
func (a *Agent) advertised() []string {
	caps := append([]string(nil), a.cfg.Capabilities...)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.extraCaps {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps
}

// admit refuses new work unless the agent is Active.
func (a *Agent) admit(m Meta) *Error {
	switch s := a.lc.State(); s {
	case StateActive:
		return nil
	case StateSuspended:
		return Errorf(CodeUnavailable, "agent %s is suspended", a.cfg.Name)
	default:
		return Errorf(CodeUnavailable, "agent %s is %s", a.cfg.Name, s)
	}
}

// serve runs the agent over an established connection until ctx ends, Retire is called
// or the connection fails, then shuts down gracefully. It owns conn and closes it.
func (a *Agent) serve(ctx context.Context, conn meshConn) (err error) {
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("agent: Run called twice")
	}
	a.running = true
	call, event, stream := a.call, a.event, a.stream
	a.mu.Unlock()

	if _, err := a.lc.Fire(EventBoot); err != nil {
		_ = conn.Close()
		return err
	}
	disp, err := NewDispatcher(DispatcherConfig{
		Workers: a.cfg.Workers, QueueSize: a.cfg.QueueSize, Inline: a.cfg.InlineHandlers,
		Call: call, Event: event, Stream: stream,
		Send: conn.Send, Admit: a.admit, Logger: a.log, Tracer: a.tracer,
	})
	if err != nil {
		_, _ = a.lc.Fire(EventAbort)
		_ = conn.Close()
		return err
	}
	reg := &registrar{
		client: conn, interval: a.cfg.HeartbeatInterval, state: a.lc.State, log: a.log,
		reg: Registration{ID: a.cfg.ID, Name: a.cfg.Name, Capabilities: a.advertised(),
			Version: a.cfg.Version, Description: a.cfg.Description, Tags: a.cfg.Tags},
		capabilities: a.advertised,
	}
	reg.defaults()
	if r, ok := conn.(*redialer); ok {
		r.mu.Lock()
		r.onNew = reg.renewNow
		r.mu.Unlock()
	}
	a.disp.Store(disp)
	a.reg.Store(reg)
	// Tell the registry at once when the agent stops or resumes taking calls, so
	// discovery (accepting_only) stops offering it without waiting for the next beat.
	a.lc.OnTransition(func(t Transition) {
		if t.To == StateSuspended || t.From == StateSuspended || t.To == StateRetiring {
			reg.reportNow()
		}
	})
	var activateOnce sync.Once
	reg.onRegistered = func() {
		activateOnce.Do(func() {
			if _, err := a.lc.Fire(EventActivate); err == nil {
				a.log.Info("agent: active")
			}
		})
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	regDone := make(chan error, 1)
	go func() { regDone <- reg.run(runCtx) }()
	recvDone := make(chan error, 1)
	go func() { recvDone <- a.receive(runCtx, conn, disp) }()

	var cause error
	select {
	case <-ctx.Done():
		cause = ctx.Err()
	case <-a.retire:
	case err := <-recvDone:
		recvDone <- err // keep it for the drain below
		cause = fmt.Errorf("agent: connection lost: %w", err)
	}
	return a.shutdown(ctx, conn, disp, reg, stopRun, regDone, recvDone, cause)
}

// receive feeds inbound messages to the dispatcher until the connection fails or ctx ends.
func (a *Agent) receive(ctx context.Context, conn meshConn, disp *Dispatcher) error {
	for {
		in, err := conn.Recv(ctx)
		if err != nil {
			return err
		}
		_ = disp.Dispatch(in) // refusals are answered and counted by the dispatcher
	}
}

// shutdown is the graceful path: Retiring (stop intake), drain handlers within the
// shutdown timeout, deregister once, close the connection, Terminated.
func (a *Agent) shutdown(ctx context.Context, conn meshConn, disp *Dispatcher, reg *registrar,
	stopRun context.CancelFunc, regDone, recvDone chan error, cause error) error {
	if _, err := a.lc.Fire(EventRetire); err != nil {
		_, _ = a.lc.Fire(EventAbort)
	}
	a.log.Info("agent: retiring", "cause", fmt.Sprint(cause))
	// The drain and the goodbye run on their own clock: the caller's ctx may be the very
	// thing that ended (SIGTERM), and in-flight work still deserves its deadline.
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	drainErr := disp.Shutdown(drainCtx)
	if drainErr != nil {
		a.log.Warn("agent: in-flight handlers did not finish in time", "error", drainErr)
	}
	stopRun() // stops the registration loop and the receive loop
	<-regDone
	deregErr := reg.deregister(drainCtx)
	closeErr := conn.Close()
	<-recvDone
	_, _ = a.lc.Fire(EventTerminate)
	a.log.Info("agent: terminated")
	if cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	return errors.Join(drainErr, deregErr, closeErr)
}
