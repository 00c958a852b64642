package agent

import (
	"fmt"
	"sync"
	"time"
)

// State is a point in an agent's life.
type State uint8

// The lifecycle states, in the order an agent normally passes through them.
const (
	StateInit       State = iota // constructed, nothing started
	StateReady                   // booted: connected and registering, not yet serving
	StateActive                  // serving calls
	StateSuspended               // registered but refusing new calls
	StateRetiring                // draining in-flight work before stopping
	StateTerminated              // stopped for good
)

var stateNames = [...]string{"init", "ready", "active", "suspended", "retiring", "terminated"}

// String returns the state's lower-case name ("active").
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// LifecycleEvent is what asks the lifecycle to move.
type LifecycleEvent uint8

// The lifecycle events.
const (
	EventBoot      LifecycleEvent = iota // Init → Ready
	EventActivate                        // Ready → Active
	EventSuspend                         // Active → Suspended
	EventResume                          // Suspended → Active
	EventRetire                          // Ready | Active | Suspended → Retiring
	EventTerminate                       // Retiring → Terminated; Terminated → Terminated (no-op)
	EventAbort                           // any state → Terminated
)

var eventNames = [...]string{"boot", "activate", "suspend", "resume", "retire", "terminate", "abort"}

// String returns the event's lower-case name ("retire").
func (e LifecycleEvent) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// TransitionError is returned for a move the state machine does not allow. It names the
// state the agent was in and the event that was refused.
type TransitionError struct {
	State State
	Event LifecycleEvent
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("agent: event %q not allowed in state %q", e.Event, e.State)
}

// Next is the whole state machine as a pure function: the state that event e leads to from
// state s, or a *TransitionError. It has no side effects, so it can be tested exhaustively.
// Terminate in Terminated and Abort in Terminated return Terminated with no error: shutting
// down twice is not a mistake.
func Next(s State, e LifecycleEvent) (State, error) {
	switch e {
	case EventAbort:
		if s <= StateTerminated {
			return StateTerminated, nil
		}
	case EventBoot:
		if s == StateInit {
			return StateReady, nil
		}
	case EventActivate:
		if s == StateReady {
			return StateActive, nil
		}
	case EventSuspend:
		if s == StateActive {
			return StateSuspended, nil
		}
	case EventResume:
		if s == StateSuspended {
			return StateActive, nil
		}
	case EventRetire:
		if s == StateReady || s == StateActive || s == StateSuspended {
			return StateRetiring, nil
		}
	case EventTerminate:
		if s == StateRetiring || s == StateTerminated {
			return StateTerminated, nil
		}
	}
	return s, &TransitionError{State: s, Event: e}
}

// Transition records one move of the lifecycle.
type Transition struct {
	From  State
	To    State
	Event LifecycleEvent
	At    time.Time
}

// Lifecycle holds an agent's state and tells hooks and subscribers when it changes.
// Moves are serialised: hooks see transitions one at a time, in order. The zero value is
// not usable; use NewLifecycle.
type Lifecycle struct {
	fire sync.Mutex // serialises Fire, so hooks run in transition order

	mu     sync.RWMutex
	state  State
	hooks  []func(Transition)
	subs   map[int]chan Transition
	nextID int
	done   chan struct{}
}

// NewLifecycle returns a lifecycle in StateInit.
func NewLifecycle() *Lifecycle {
	return &Lifecycle{subs: make(map[int]chan Transition), done: make(chan struct{})}
}

// State returns the current state.
func (l *Lifecycle) State() State {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.state
}

// Done returns a channel closed when the lifecycle reaches StateTerminated.
func (l *Lifecycle) Done() <-chan struct{} { return l.done }

// OnTransition adds a hook called after every state change, in registration order, with
// the transition that happened. Hooks run synchronously inside Fire: they must be quick
// and must not call Fire (that would deadlock); read State freely.
func (l *Lifecycle) OnTransition(hook func(Transition)) {
	l.mu.Lock()
	l.hooks = append(l.hooks, hook)
	l.mu.Unlock()
}

// Subscribe returns a channel that receives every later transition, and a function that
// stops the subscription and closes the channel. The channel holds up to buffer pending
// transitions (at least 1); when a subscriber falls behind, the oldest pending transition
// is dropped so the newest is always delivered. The channel is closed after the
// transition into StateTerminated.
func (l *Lifecycle) Subscribe(buffer int) (<-chan Transition, func()) {
	if buffer < 1 {
		buffer = 1
	}
	ch := make(chan Transition, buffer)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == StateTerminated {
		close(ch)
		return ch, func() {}
	}
	id := l.nextID
	l.nextID++
	l.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if c, ok := l.subs[id]; ok {
				delete(l.subs, id)
				close(c)
			}
		})
	}
}

// Fire applies event e. It returns the transition made, or a *TransitionError (and leaves
// the state unchanged) when e is not allowed in the current state. An idempotent move
// (terminate or abort when already terminated) returns a Transition with From == To and
// runs no hooks.
func (l *Lifecycle) Fire(e LifecycleEvent) (Transition, error) {
	l.fire.Lock()
	defer l.fire.Unlock()

	l.mu.Lock()
	from := l.state
	to, err := Next(from, e)
	if err != nil {
		l.mu.Unlock()
		return Transition{}, err
	}
	t := Transition{From: from, To: to, Event: e, At: time.Now()}
	if from == to {
		l.mu.Unlock()
		return t, nil
	}
	l.state = to
	hooks := l.hooks
	for _, ch := range l.subs {
		deliverLatest(ch, t)
	}
	if to == StateTerminated {
		for id, ch := range l.subs {
			delete(l.subs, id)
			close(ch)
		}
		close(l.done)
	}
	l.mu.Unlock()

	for _, h := range hooks {
		h(t)
	}
	return t, nil
}

// deliverLatest sends t on ch without blocking, dropping the oldest pending value when ch
// is full. Callers hold the lifecycle lock, so no other sender races on ch.
func deliverLatest(ch chan Transition, t Transition) {
	for {
		select {
		case ch <- t:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}
