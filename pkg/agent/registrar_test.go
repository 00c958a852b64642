package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeRegistry scripts the registry's answers and records what it was asked.
type fakeRegistry struct {
	mu            sync.Mutex
	registerFails int           // fail this many registrations first
	beats         []bool        // needs_register answers, in order; then false
	beatErrs      int           // fail this many heartbeats (after the scripted ones)
	asked         time.Duration // the heartbeat interval registrations answer with
	registers     int
	heartbeats    []map[string]string
	deregisters   int
	events        chan string
}

// emit records an event without ever blocking the agent under test.
func (f *fakeRegistry) emit(ev string) {
	select {
	case f.events <- ev:
	default:
	}
}

func (f *fakeRegistry) Register(ctx context.Context, r Registration) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.registerFails > 0 {
		f.registerFails--
		f.emit("register-failed")
		return 0, Errorf(CodeUnavailable, "registry down")
	}
	f.registers++
	f.emit("registered")
	return f.asked, nil
}

func (f *fakeRegistry) Heartbeat(ctx context.Context, id string, meta map[string]string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heartbeats = append(f.heartbeats, meta)
	if len(f.beats) > 0 {
		needs := f.beats[0]
		f.beats = f.beats[1:]
		f.emit(map[bool]string{true: "needs-register", false: "beat"}[needs])
		return needs, nil
	}
	if f.beatErrs > 0 {
		f.beatErrs--
		f.emit("beat-failed")
		return false, errors.New("lost")
	}
	f.emit("beat")
	return false, nil
}

func (f *fakeRegistry) Deregister(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deregisters++
	return nil
}

func expectEvents(t *testing.T, ch chan string, want ...string) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-ch:
			if got != w {
				t.Fatalf("event %d = %q, want %q", i, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d (%q) never came", i, w)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRegistrar(t *testing.T) {
	tests := []struct {
		name string
		fake *fakeRegistry
		want []string
	}{
		{"retries with backoff", &fakeRegistry{registerFails: 3}, []string{"register-failed", "register-failed", "register-failed", "registered", "beat"}},
		{"needs_register re-registers at once", &fakeRegistry{beats: []bool{false, true}}, []string{"registered", "beat", "needs-register", "registered", "beat"}},
		{"failed heartbeat re-registers", &fakeRegistry{beatErrs: 1, beats: []bool{}}, []string{"registered", "beat-failed", "registered", "beat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fake.events = make(chan string, 1024)
			var state sync.Mutex
			st := StateActive
			r := &registrar{
				client: tt.fake, reg: Registration{ID: "a1", Name: "n"},
				interval: time.Millisecond, initial: time.Millisecond, maxWait: 4 * time.Millisecond,
				state: func() State { state.Lock(); defer state.Unlock(); return st },
				log:   quietLogger(),
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.run(ctx) }()
			expectEvents(t, tt.fake.events, tt.want...)
			state.Lock()
			st = StateSuspended
			state.Unlock()
			// Wait for a heartbeat that reports the suspension.
			for {
				expectEvents(t, tt.fake.events, "beat")
				tt.fake.mu.Lock()
				last := tt.fake.heartbeats[len(tt.fake.heartbeats)-1]
				tt.fake.mu.Unlock()
				if last["state"] == "suspended" {
					if last["accepting"] != "false" {
						t.Fatalf("suspended heartbeat metadata = %v", last)
					}
					break
				}
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("run returned %v", err)
			}
			if !r.registered.Load() {
				t.Fatal("not marked registered")
			}
			for range 2 {
				if err := r.deregister(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fake.deregisters != 1 || r.registered.Load() {
				t.Fatalf("deregistered %d times", tt.fake.deregisters)
			}
		})
	}
}

func TestRegistrarNeverRegisteredSkipsDeregister(t *testing.T) {
	fake := &fakeRegistry{registerFails: 1 << 30, events: make(chan string, 1<<10)}
	r := &registrar{client: fake, reg: Registration{ID: "a"}, initial: time.Millisecond, maxWait: time.Millisecond, state: func() State { return StateReady }, log: quietLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()
	expectEvents(t, fake.events, "register-failed", "register-failed")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := r.deregister(context.Background()); err != nil || fake.deregisters != 0 {
		t.Fatalf("deregister without registration: %v, %d", err, fake.deregisters)
	}
	if r.failures.Load() < 1 { // the second failure may be cut short by the cancel
		t.Fatalf("failures = %d", r.failures.Load())
	}
}

func TestRegistrarBackoffGrowsWithJitter(t *testing.T) {
	r := &registrar{initial: 100 * time.Millisecond, maxWait: time.Second}
	r.defaults()
	b := r.newBackoff()
	var waits []time.Duration
	for range 8 {
		waits = append(waits, b.NextBackOff())
	}
	nominal := 100 * time.Millisecond
	for i, w := range waits {
		lo, hi := nominal/2, nominal*3/2
		if w < lo || w > hi {
			t.Fatalf("wait %d = %v, want within [%v, %v]", i, w, lo, hi)
		}
		nominal = min(nominal*2, time.Second)
	}
}

func TestHeartbeatMeta(t *testing.T) {
	for s := StateInit; s <= StateTerminated; s++ {
		m := heartbeatMeta(s)
		want := "false"
		if s == StateActive {
			want = "true"
		}
		if m["state"] != s.String() || m["accepting"] != want {
			t.Errorf("%s: %v", s, m)
		}
	}
}

// TestRegistrarReportsAtOnce: with an hour between heartbeats, an agent that is not
// active heartbeats right after registering (a registration resets what the registry
// shows), and reportNow heartbeats at once.
func TestRegistrarReportsAtOnce(t *testing.T) {
	tests := []struct {
		name  string
		state State
		nudge bool
		want  []string
	}{
		{"suspended at registration", StateSuspended, false, []string{"registered", "beat"}},
		{"retiring at registration", StateRetiring, false, []string{"registered", "beat"}},
		{"active waits for the interval", StateActive, false, []string{"registered"}},
		{"reportNow", StateActive, true, []string{"registered", "beat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeRegistry{events: make(chan string, 16)}
			r := &registrar{client: fake, reg: Registration{ID: "a1"}, interval: time.Hour,
				state: func() State { return tt.state }, log: quietLogger()}
			r.defaults()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.run(ctx) }()
			expectEvents(t, fake.events, "registered")
			if tt.nudge {
				r.reportNow()
			}
			expectEvents(t, fake.events, tt.want[1:]...)
			select {
			case ev := <-fake.events:
				t.Fatalf("unexpected %q", ev)
			case <-time.After(50 * time.Millisecond):
			}
			cancel()
			<-done
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if len(fake.heartbeats) > 0 && fake.heartbeats[0]["state"] != tt.state.String() {
				t.Fatalf("heartbeat metadata %v", fake.heartbeats[0])
			}
		})
	}
}

// The registrar heartbeats at the interval the registry's answer asks for, not at a
// fixed 10 s: with a 2 s lease (heartbeat ~666 ms) a fixed 10 s would lose the lease
// between heartbeats. A configured interval overrides the registry's.
func TestRegistrarHeartbeatsAtTheRegistrysInterval(t *testing.T) {
	for _, tt := range []struct {
		name          string
		asked, config time.Duration
		want          time.Duration
	}{
		{"registry's", 666 * time.Millisecond, 0, 666 * time.Millisecond},
		{"configured overrides", 666 * time.Millisecond, 3 * time.Second, 3 * time.Second},
		{"default when unsaid", 0, 0, DefaultHeartbeatInterval},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := &fakeRegistry{asked: tt.asked, events: make(chan string, 1024)}
				r := &registrar{client: fake, reg: Registration{ID: "a1", Name: "n"}, interval: tt.config,
					state: func() State { return StateActive }, log: quietLogger()}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				start := time.Now()
				go func() { done <- r.run(ctx) }()
				next := func(want string) { // a bubble's deadlock ends a wait that never ends
					if ev := <-fake.events; ev != want {
						t.Fatalf("event %q, want %q", ev, want)
					}
				}
				next("registered")
				for i := 1; i <= 3; i++ {
					next("beat")
					if got := time.Since(start); got != time.Duration(i)*tt.want {
						t.Fatalf("heartbeat %d after %v, want %v", i, got, time.Duration(i)*tt.want)
					}
				}
				cancel()
				<-done
			})
		})
	}
}
