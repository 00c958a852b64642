package agent

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Registration defaults, used when the matching field is zero.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultRegisterBackoff   = 200 * time.Millisecond
	DefaultRegisterMaxWait   = 30 * time.Second
)

// Registration is what an agent tells the registry about itself.
type Registration struct {
	ID           string   // the agent id (a UUID)
	Name         string   // human-readable, not unique
	Capabilities []string // what it can do, for discovery ("review.code")
	Version      string
	Description  string
	Tags         []string
}

// registryClient is the registry as the registration loop needs it. The mesh connection
// implements it with AgentRegister and AgentHeartbeat frames; tests use a fake.
type registryClient interface {
	// Register registers r; heartbeat is the interval the registry asks for, 0 when it
	// does not say.
	Register(ctx context.Context, r Registration) (heartbeat time.Duration, err error)
	// Heartbeat renews the lease. metadata carries the agent's state (see heartbeatMeta).
	// needsRegister is the registry asking for a fresh registration (it lost the lease).
	Heartbeat(ctx context.Context, id string, metadata map[string]string) (needsRegister bool, err error)
	// Deregister ends the registration (a heartbeat with the FINAL flag).
	Deregister(ctx context.Context, id string) error
}

// registrar keeps an agent registered: it registers with exponential backoff and jitter,
// heartbeats at the interval the registry asked for in its last registration answer
// (interval, when set, overrides it; DefaultHeartbeatInterval when neither says),
// re-registers at once when the registry answers
// needs_register (or after a heartbeat fails), and deregisters exactly once.
type registrar struct {
	client   registryClient
	reg      Registration
	interval time.Duration // configured (Config.HeartbeatInterval); 0: the registry's
	every    atomic.Int64  // the interval in use, in ns (see beatInterval)
	initial  time.Duration // first backoff
	maxWait  time.Duration // backoff cap
	state    func() State  // the lifecycle state, reported in heartbeats
	log      *slog.Logger

	registered   atomic.Bool
	registers    atomic.Uint64 // successful registrations
	heartbeats   atomic.Uint64 // successful heartbeats
	failures     atomic.Uint64 // failed register or heartbeat attempts
	onRegistered func()        // called after each successful registration, if set

	deregOnce sync.Once
	deregErr  error

	renew  chan struct{} // a signal to register again at once (a new connection)
	report chan struct{} // a signal to heartbeat at once (the lifecycle state changed)

	// capabilities, if set, gives the capabilities to register each time (they may grow
	// while the agent runs, as tools are added).
	capabilities func() []string
}

// renewNow asks the loop to register again at once, e.g. on a new connection, where the
// edge does not yet know which agents it carries. It never blocks.
func (r *registrar) renewNow() {
	select {
	case r.renew <- struct{}{}:
	default:
	}
}

// reportNow asks the loop to heartbeat at once, so the registry learns a new lifecycle
// state (suspended, resumed, retiring) without waiting for the next interval. Should be
// called after the agent's state changes. It never blocks.
func (r *registrar) reportNow() {
	select {
	case r.report <- struct{}{}:
	default:
	}
}

func (r *registrar) defaults() {
	if r.initial <= 0 {
		r.initial = DefaultRegisterBackoff
	}
	if r.maxWait <= 0 {
		r.maxWait = DefaultRegisterMaxWait
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.renew == nil {
		r.renew = make(chan struct{}, 1)
	}
	if r.report == nil {
		r.report = make(chan struct{}, 1)
	}
}

// run keeps the agent registered until ctx ends; it returns ctx's error.
func (r *registrar) run(ctx context.Context) error {
	r.defaults()
	for {
		if err := r.registerWithBackoff(ctx); err != nil {
			return err
		}
		if err := r.heartbeatUntilLost(ctx); err != nil {
			return err
		}
	}
}

func (r *registrar) newBackoff() *backoff.ExponentialBackOff {
	// cenkalti/backoff/v5, the mesh's one backoff library (pkg/common/resilience.Retry
	// takes its exponential sequence from it too). A v5 ExponentialBackOff never gives up:
	// the agent retries while it runs.
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = r.initial
	b.MaxInterval = r.maxWait
	b.RandomizationFactor = 0.5 // jitter: each wait is 50%–150% of the nominal one
	b.Multiplier = 2
	b.Reset()
	return b
}

// registerWithBackoff registers, retrying with exponential backoff and jitter, until it
// succeeds or ctx ends.
func (r *registrar) registerWithBackoff(ctx context.Context) error {
	b := r.newBackoff()
	for {
		reg := r.reg
		if r.capabilities != nil {
			reg.Capabilities = r.capabilities()
		}
		asked, err := r.client.Register(ctx, reg)
		if err == nil {
			r.every.Store(int64(r.beatInterval(asked)))
			r.registered.Store(true)
			r.registers.Add(1)
			if r.onRegistered != nil {
				r.onRegistered()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.failures.Add(1)
		wait := b.NextBackOff()
		r.log.Warn("agent: register failed, retrying", "agent_id", r.reg.ID, "code", string(CodeOf(err)), "error", err, "retry_in", wait)
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

// beatInterval is the heartbeat interval after a registration whose answer asked for
// asked (0: not said): the configured interval when there is one, else the registry's,
// else DefaultHeartbeatInterval. A fixed 10 s against a registry with a shorter lease
// would lose the lease between heartbeats.
func (r *registrar) beatInterval(asked time.Duration) time.Duration {
	switch {
	case r.interval > 0:
		return r.interval
	case asked > 0:
		return asked
	}
	return DefaultHeartbeatInterval
}

// heartbeatInterval is the interval in use: set by each registration.
func (r *registrar) heartbeatInterval() time.Duration {
	if d := time.Duration(r.every.Load()); d > 0 {
		return d
	}
	return r.beatInterval(0)
}

// heartbeatUntilLost heartbeats every interval, and at once when reportNow asks, and
// returns nil when the registration must be renewed, or ctx's error. A registration
// resets the lifecycle the registry shows (an agent that reports nothing is assumed to
// take calls), so an agent that is not active heartbeats right after registering.
func (r *registrar) heartbeatUntilLost(ctx context.Context) error {
	every := r.heartbeatInterval()
	t := time.NewTicker(every)
	defer t.Stop()
	now := r.state() != StateActive
	for {
		if !now {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-r.renew:
				r.registered.Store(false)
				return nil
			case <-r.report:
				t.Reset(every)
			case <-t.C:
			}
		}
		now = false
		needs, err := r.client.Heartbeat(ctx, r.reg.ID, heartbeatMeta(r.state()))
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			r.failures.Add(1)
			r.log.Warn("agent: heartbeat failed; registering again", "agent_id", r.reg.ID, "code", string(CodeOf(err)), "error", err)
			r.registered.Store(false)
			return nil
		case needs:
			r.log.Info("agent: registry asked to register again", "agent_id", r.reg.ID)
			r.registered.Store(false)
			return nil
		}
		r.heartbeats.Add(1)
	}
}

// deregister ends the registration once; later calls return the first result. It is a
// no-op when the agent never registered.
func (r *registrar) deregister(ctx context.Context) error {
	r.deregOnce.Do(func() {
		if r.registers.Load() == 0 {
			return
		}
		r.deregErr = r.client.Deregister(ctx, r.reg.ID)
		r.registered.Store(false)
	})
	return r.deregErr
}

// heartbeatMeta is the metadata a heartbeat carries: the lifecycle state, and
// "accepting": "false" when the agent refuses new calls.
func heartbeatMeta(s State) map[string]string {
	accepting := "true"
	if s != StateActive {
		accepting = "false"
	}
	return map[string]string{"state": s.String(), "accepting": accepting}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
