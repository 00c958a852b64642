package agent

import (
	"errors"
	"sync"
	"testing"
)

func TestNextFullMatrix(t *testing.T) {
	// want[state][event] is the next state, or -1 when the move is an error.
	const x = -1
	want := map[State]map[LifecycleEvent]int{
		StateInit:       {EventBoot: int(StateReady), EventActivate: x, EventSuspend: x, EventResume: x, EventRetire: x, EventTerminate: x, EventAbort: int(StateTerminated)},
		StateReady:      {EventBoot: x, EventActivate: int(StateActive), EventSuspend: x, EventResume: x, EventRetire: int(StateRetiring), EventTerminate: x, EventAbort: int(StateTerminated)},
		StateActive:     {EventBoot: x, EventActivate: x, EventSuspend: int(StateSuspended), EventResume: x, EventRetire: int(StateRetiring), EventTerminate: x, EventAbort: int(StateTerminated)},
		StateSuspended:  {EventBoot: x, EventActivate: x, EventSuspend: x, EventResume: int(StateActive), EventRetire: int(StateRetiring), EventTerminate: x, EventAbort: int(StateTerminated)},
		StateRetiring:   {EventBoot: x, EventActivate: x, EventSuspend: x, EventResume: x, EventRetire: x, EventTerminate: int(StateTerminated), EventAbort: int(StateTerminated)},
		StateTerminated: {EventBoot: x, EventActivate: x, EventSuspend: x, EventResume: x, EventRetire: x, EventTerminate: int(StateTerminated), EventAbort: int(StateTerminated)},
	}
	n := 0
	for s := StateInit; s <= StateTerminated; s++ {
		for e := EventBoot; e <= EventAbort; e++ {
			n++
			w, ok := want[s][e]
			if !ok {
				t.Fatalf("matrix misses %s × %s", s, e)
			}
			got, err := Next(s, e)
			if w == x {
				var te *TransitionError
				if !errors.As(err, &te) || te.State != s || te.Event != e || got != s {
					t.Errorf("Next(%s, %s) = %s, %v; want TransitionError naming both", s, e, got, err)
				}
				continue
			}
			if err != nil || got != State(w) {
				t.Errorf("Next(%s, %s) = %s, %v; want %s", s, e, got, err, State(w))
			}
		}
	}
	if n != 42 {
		t.Fatalf("checked %d cells, want 6×7", n)
	}
}

func TestTransitionErrorNamesStateAndEvent(t *testing.T) {
	_, err := Next(StateInit, EventSuspend)
	if got, want := err.Error(), `agent: event "suspend" not allowed in state "init"`; got != want {
		t.Fatalf("error = %q, want %q", got, want)
	}
	if got := State(99).String(); got != "state(99)" {
		t.Fatalf("unknown state name = %q", got)
	}
	if got := LifecycleEvent(99).String(); got != "event(99)" {
		t.Fatalf("unknown event name = %q", got)
	}
	if _, err := Next(State(99), EventAbort); err == nil {
		t.Fatal("abort from an unknown state must fail")
	}
}

func TestLifecycleHooksAndSubscribers(t *testing.T) {
	l := NewLifecycle()
	var hooked []Transition
	l.OnTransition(func(tr Transition) {
		if l.State() != tr.To {
			t.Errorf("hook sees state %s, want %s", l.State(), tr.To)
		}
		hooked = append(hooked, tr)
	})
	ch, stop := l.Subscribe(16)
	defer stop()

	steps := []struct {
		ev      LifecycleEvent
		want    State
		wantErr bool
	}{
		{EventActivate, StateInit, true},
		{EventBoot, StateReady, false},
		{EventActivate, StateActive, false},
		{EventSuspend, StateSuspended, false},
		{EventSuspend, StateSuspended, true},
		{EventResume, StateActive, false},
		{EventRetire, StateRetiring, false},
		{EventTerminate, StateTerminated, false},
		{EventTerminate, StateTerminated, false}, // idempotent
		{EventAbort, StateTerminated, false},     // idempotent
	}
	for i, st := range steps {
		_, err := l.Fire(st.ev)
		if (err != nil) != st.wantErr {
			t.Fatalf("step %d (%s): err = %v, wantErr %v", i, st.ev, err, st.wantErr)
		}
		if l.State() != st.want {
			t.Fatalf("step %d (%s): state %s, want %s", i, st.ev, l.State(), st.want)
		}
	}
	wantSeq := []State{StateReady, StateActive, StateSuspended, StateActive, StateRetiring, StateTerminated}
	if len(hooked) != len(wantSeq) {
		t.Fatalf("hooks ran %d times, want %d (no hook for refused or idempotent moves)", len(hooked), len(wantSeq))
	}
	var got []State
	for tr := range ch { // closed after Terminated
		got = append(got, tr.To)
	}
	for i, s := range wantSeq {
		if hooked[i].To != s || got[i] != s {
			t.Fatalf("transition %d: hook %s, subscriber %s, want %s", i, hooked[i].To, got[i], s)
		}
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Done not closed after terminate")
	}
	late, _ := l.Subscribe(1)
	if _, ok := <-late; ok {
		t.Fatal("subscribing after termination must give a closed channel")
	}
}

func TestSubscriberFallingBehindGetsLatest(t *testing.T) {
	l := NewLifecycle()
	ch, stop := l.Subscribe(1)
	for _, e := range []LifecycleEvent{EventBoot, EventActivate, EventSuspend} {
		if _, err := l.Fire(e); err != nil {
			t.Fatal(err)
		}
	}
	if tr := <-ch; tr.To != StateSuspended {
		t.Fatalf("slow subscriber got %s, want the latest (suspended)", tr.To)
	}
	stop()
	stop() // safe twice
	if _, ok := <-ch; ok {
		t.Fatal("channel open after stop")
	}
	if _, err := l.Fire(EventAbort); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycleConcurrentFire(t *testing.T) {
	l := NewLifecycle()
	if _, err := l.Fire(EventBoot); err != nil {
		t.Fatal(err)
	}
	// Many goroutines race to activate: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.Fire(EventActivate); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 || l.State() != StateActive {
		t.Fatalf("wins = %d, state = %s", wins, l.State())
	}
}
