package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// storeFactory returns a fresh, empty store.
type storeFactory func(t *testing.T) Store

// t0 is millisecond-aligned: the Redis store keeps times in Unix milliseconds.
var t0 = time.UnixMilli(time.Now().UnixMilli())

func testAgent(n int, name string, caps []string, tags ...string) Agent {
	return Agent{
		ID: agentID(n), Name: name, Capabilities: caps, Address: "127.0.0.1:7000",
		Metadata:     mxp.AgentMetadata{Version: "1.0.0", Tags: tags},
		RegisteredAt: t0, LastHeartbeat: t0, ExpiresAt: t0.Add(30 * time.Second),
	}
}

// agentID returns a deterministic UUID whose order follows n.
func agentID(n int) string {
	return uuid.UUID{0: byte(n >> 24), 1: byte(n >> 16), 2: byte(n >> 8), 3: byte(n), 6: 0x40, 8: 0x80}.String()
}

func ids(as []Agent) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func suspended() *Lifecycle {
	return &Lifecycle{State: LifecycleSuspended, Accepting: boolPtr(false)}
}

func active() *Lifecycle { return &Lifecycle{State: LifecycleActive, Accepting: boolPtr(true)} }

// runStoreSuite is the one suite every Store implementation passes.
func runStoreSuite(t *testing.T, newStore storeFactory) {
	ctx := context.Background()
	t.Run("register, update, get", func(t *testing.T) {
		s := newStore(t)
		a := testAgent(1, "alpha", []string{"chat", "search"})
		prev, err := s.Register(ctx, a)
		if err != nil || prev != nil {
			t.Fatalf("first register: prev=%v err=%v", prev, err)
		}
		got, err := s.Get(ctx, a.ID, t0)
		if err != nil || got.Name != "alpha" || !got.RegisteredAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(30*time.Second)) {
			t.Fatalf("get: %+v %v", got, err)
		}
		b := a
		b.Name, b.Capabilities = "alpha2", []string{"chat", "translate"}
		b.RegisteredAt, b.LastHeartbeat, b.ExpiresAt = t0.Add(time.Second), t0.Add(time.Second), t0.Add(31*time.Second)
		prev, err = s.Register(ctx, b)
		if err != nil || prev == nil || prev.Name != "alpha" {
			t.Fatalf("second register: prev=%v err=%v", prev, err)
		}
		got, _ = s.Get(ctx, a.ID, t0)
		if got.Name != "alpha2" || !got.RegisteredAt.Equal(t0) || !got.LastHeartbeat.Equal(t0.Add(time.Second)) {
			t.Fatalf("update must keep registered_at: %+v", got)
		}
		for cap, want := range map[string]int{"search": 0, "translate": 1, "chat": 1} {
			as, _, err := s.Discover(ctx, Query{Capabilities: []string{cap}, Limit: 10}, t0)
			if err != nil || len(as) != want {
				t.Fatalf("discover %s after update: %d agents (%v)", cap, len(as), err)
			}
		}
		if n, _ := s.Count(ctx); n != 1 {
			t.Fatalf("count %d", n)
		}
		// Registering after the lease ended (not yet collected) starts a new registration.
		c := b
		c.RegisteredAt, c.LastHeartbeat, c.ExpiresAt = t0.Add(time.Minute), t0.Add(time.Minute), t0.Add(2*time.Minute)
		if prev, err := s.Register(ctx, c); err != nil || prev == nil || !prev.ExpiresAt.Equal(t0.Add(31*time.Second)) {
			t.Fatalf("register after lease end: prev=%+v err=%v", prev, err)
		}
		if got, _ := s.Get(ctx, c.ID, t0.Add(time.Minute)); !got.RegisteredAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("registered_at after an ended lease = %v, want the new registration time", got.RegisteredAt)
		}
	})

	t.Run("heartbeat", func(t *testing.T) {
		s := newStore(t)
		a := testAgent(2, "beta", []string{"x"})
		if _, err := s.Heartbeat(ctx, a.ID, t0, t0.Add(time.Minute), nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown agent heartbeat: %v", err)
		}
		s.Register(ctx, a)
		if _, err := s.Heartbeat(ctx, a.ID, t0.Add(10*time.Second), t0.Add(40*time.Second), nil); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, a.ID, t0)
		if !got.LastHeartbeat.Equal(t0.Add(10*time.Second)) || !got.ExpiresAt.Equal(t0.Add(40*time.Second)) {
			t.Fatalf("after heartbeat %+v", got)
		}
		if _, err := s.Heartbeat(ctx, a.ID, t0.Add(40*time.Second), t0.Add(70*time.Second), suspended()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("heartbeat at lease end must be refused: %v", err)
		}
		if _, err := s.Get(ctx, a.ID, t0.Add(41*time.Second)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get after lease end: %v", err)
		}
	})

	t.Run("lifecycle from heartbeats", func(t *testing.T) {
		s := newStore(t)
		a := testAgent(4, "delta", []string{"x"})
		s.Register(ctx, a)
		steps := []struct {
			name     string
			report   *Lifecycle
			wantPrev Lifecycle
			want     Lifecycle
		}{
			{"no metadata keeps unknown", nil, Lifecycle{}, Lifecycle{}},
			{"first report", suspended(), Lifecycle{}, *suspended()},
			{"no metadata keeps the report", nil, Lifecycle{}, *suspended()},
			{"state only", &Lifecycle{State: "ready"}, *suspended(), Lifecycle{State: "ready"}},
			{"accepting only", &Lifecycle{Accepting: boolPtr(true)}, Lifecycle{State: "ready"}, Lifecycle{Accepting: boolPtr(true)}},
			{"resumed", active(), Lifecycle{Accepting: boolPtr(true)}, *active()},
		}
		for i, st := range steps {
			now := t0.Add(time.Duration(i+1) * time.Second)
			prev, err := s.Heartbeat(ctx, a.ID, now, now.Add(30*time.Second), st.report)
			if err != nil || !prev.Equal(st.wantPrev) {
				t.Fatalf("%s: prev=%+v err=%v, want prev %+v", st.name, prev, err, st.wantPrev)
			}
			got, err := s.Get(ctx, a.ID, now)
			if err != nil || !got.Lifecycle.Equal(st.want) || !got.LastHeartbeat.Equal(now) {
				t.Fatalf("%s: stored %+v (heartbeat %v) err=%v, want %+v", st.name, got.Lifecycle, got.LastHeartbeat, err, st.want)
			}
		}
		// The store keeps its own copy of the report.
		r := suspended()
		if _, err := s.Heartbeat(ctx, a.ID, t0.Add(20*time.Second), t0.Add(2*time.Minute), r); err != nil {
			t.Fatal(err)
		}
		*r.Accepting = true
		if got, _ := s.Get(ctx, a.ID, t0.Add(time.Minute)); got.Lifecycle.AcceptsCalls() {
			t.Fatal("store shares the caller's Accepting pointer")
		}
		// A registration stores the lifecycle it is given (zero: the agent starts afresh)
		// and returns the one it replaced.
		b := a
		b.LastHeartbeat, b.ExpiresAt = t0.Add(time.Minute), t0.Add(2*time.Minute)
		prev, err := s.Register(ctx, b)
		if err != nil || prev == nil || !prev.Lifecycle.Equal(*suspended()) {
			t.Fatalf("re-register: prev=%+v err=%v", prev, err)
		}
		if got, _ := s.Get(ctx, a.ID, t0.Add(time.Minute)); got.Lifecycle.Known() {
			t.Fatalf("registration kept lifecycle %+v", got.Lifecycle)
		}
		s.Heartbeat(ctx, a.ID, t0.Add(time.Minute), t0.Add(2*time.Minute), suspended())
		if got, err := s.Deregister(ctx, a.ID); err != nil || !got.Lifecycle.Equal(*suspended()) {
			t.Fatalf("deregister returned %+v %v", got.Lifecycle, err)
		}
	})

	t.Run("discover accepting only", func(t *testing.T) {
		s := newStore(t)
		reports := []*Lifecycle{nil, active(), suspended(), {State: "retiring", Accepting: boolPtr(false)}, {State: "ready"}, {Accepting: boolPtr(true)}}
		for i, r := range reports {
			a := testAgent(10+i, fmt.Sprint("agent-", i), []string{"x"})
			s.Register(ctx, a)
			if _, err := s.Heartbeat(ctx, a.ID, t0, t0.Add(30*time.Second), r); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name string
			q    Query
			want []int
		}{
			{"every agent", Query{Capabilities: []string{"x"}, Limit: 100}, []int{10, 11, 12, 13, 14, 15}},
			{"accepting only", Query{Capabilities: []string{"x"}, AcceptingOnly: true, Limit: 100}, []int{10, 11, 14, 15}},
			{"accepting only, no capability", Query{AcceptingOnly: true, Limit: 100}, []int{10, 11, 14, 15}},
			{"accepting only, paged", Query{Capabilities: []string{"x"}, AcceptingOnly: true, Limit: 2, After: agentID(10)}, []int{11, 14}},
		}
		for _, tc := range tests {
			as, _, err := s.Discover(ctx, tc.q, t0)
			var want []string
			for _, n := range tc.want {
				want = append(want, agentID(n))
			}
			if err != nil || !slices.Equal(ids(as), want) {
				t.Fatalf("%s: %v err=%v, want %v", tc.name, ids(as), err, want)
			}
		}
		as, _, _ := s.Discover(ctx, Query{Capabilities: []string{"x"}, Limit: 100}, t0)
		for i, a := range as {
			want := Lifecycle{}
			if reports[i] != nil {
				want = *reports[i]
			}
			if !a.Lifecycle.Equal(want) {
				t.Fatalf("agent %d discovered with lifecycle %+v, want %+v", i, a.Lifecycle, want)
			}
		}
		// Expiry returns the lifecycle too (for the expired event).
		got, err := s.PopExpired(ctx, t0.Add(time.Hour), 100)
		if err != nil || len(got) != len(reports) || !slices.ContainsFunc(got, func(a Agent) bool { return a.Lifecycle.Equal(*suspended()) }) {
			t.Fatalf("pop expired: %d agents %v", len(got), err)
		}
	})

	t.Run("deregister", func(t *testing.T) {
		s := newStore(t)
		a := testAgent(3, "gamma", []string{"x", "y"})
		s.Register(ctx, a)
		got, err := s.Deregister(ctx, a.ID)
		if err != nil || got.ID != a.ID || got.Name != "gamma" {
			t.Fatalf("deregister: %+v %v", got, err)
		}
		if _, err := s.Deregister(ctx, a.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second deregister: %v", err)
		}
		if as, _, _ := s.Discover(ctx, Query{Capabilities: []string{"x"}, Limit: 10}, t0); len(as) != 0 {
			t.Fatal("deregistered agent still discoverable")
		}
		if n, _ := s.Count(ctx); n != 0 {
			t.Fatalf("count %d", n)
		}
	})

	t.Run("discover filters, order and pages", func(t *testing.T) {
		s := newStore(t)
		for i := 0; i < 30; i++ {
			caps := []string{"chat"}
			if i%2 == 0 {
				caps = append(caps, "search")
			}
			if i%3 == 0 {
				caps = append(caps, "vision")
			}
			name := "worker-" + fmt.Sprint(i)
			if i%5 == 0 {
				name = "boss-" + fmt.Sprint(i)
			}
			var tags []string
			if i%4 == 0 {
				tags = []string{"gpu"}
			}
			a := testAgent(30-i, name, caps, tags...) // registration order differs from id order
			if i == 29 {
				a.ExpiresAt = t0.Add(-time.Second) // ended, not yet popped
			}
			s.Register(ctx, a)
		}
		tests := []struct {
			name string
			q    Query
			want int
		}{
			{"all", Query{Limit: 100}, 29},
			{"one capability", Query{Capabilities: []string{"search"}, Limit: 100}, 15},
			{"all capabilities required", Query{Capabilities: []string{"search", "vision"}, Limit: 100}, 5},
			{"unknown capability", Query{Capabilities: []string{"nope"}, Limit: 100}, 0},
			{"name prefix", Query{NamePrefix: "boss-", Limit: 100}, 6},
			{"tag", Query{Tag: "gpu", Limit: 100}, 8},
			{"capability and tag", Query{Capabilities: []string{"vision"}, Tag: "gpu", Limit: 100}, 3},
		}
		for _, tc := range tests {
			as, more, err := s.Discover(ctx, tc.q, t0)
			if err != nil || len(as) != tc.want || more {
				t.Fatalf("%s: %d agents more=%v err=%v, want %d", tc.name, len(as), more, err, tc.want)
			}
			if !slices.IsSorted(ids(as)) {
				t.Fatalf("%s: not ordered by id", tc.name)
			}
		}
		// Pages of 7 over "chat" visit every agent once, in order.
		var seen []string
		q := Query{Capabilities: []string{"chat"}, Limit: 7}
		for range 10 {
			as, more, err := s.Discover(ctx, q, t0)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ids(as)...)
			if !more {
				break
			}
			q.After = as[len(as)-1].ID
		}
		if len(seen) != 29 || !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != 29 {
			t.Fatalf("paging saw %d agents", len(seen))
		}
	})

	t.Run("pop expired once", func(t *testing.T) {
		s := newStore(t)
		const n = 40
		for i := range n {
			a := testAgent(i+1, "e", []string{"x"})
			a.ExpiresAt = t0.Add(time.Duration(i) * time.Millisecond)
			s.Register(ctx, a)
		}
		got, err := s.PopExpired(ctx, t0.Add(-time.Millisecond), 100)
		if err != nil || len(got) != 0 {
			t.Fatalf("nothing ended yet: %d %v", len(got), err)
		}
		got, _ = s.PopExpired(ctx, t0.Add(9*time.Millisecond), 5)
		if len(got) != 5 || got[0].Name != "e" || len(got[0].Capabilities) != 1 {
			t.Fatalf("limit 5: %+v", got)
		}
		// Concurrent poppers (replicas) see each expiry exactly once.
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					as, err := s.PopExpired(ctx, t0.Add(time.Hour), 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(as) == 0 {
						return
					}
					mu.Lock()
					for _, a := range as {
						counts[a.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(counts) != n-5 {
			t.Fatalf("popped %d distinct, want %d", len(counts), n-5)
		}
		for id, c := range counts {
			if c != 1 {
				t.Fatalf("%s popped %d times", id, c)
			}
		}
		if c, _ := s.Count(ctx); c != 0 {
			t.Fatalf("count after pops %d", c)
		}
		if as, _, _ := s.Discover(ctx, Query{Capabilities: []string{"x"}, Limit: 10}, t0.Add(-time.Hour)); len(as) != 0 {
			t.Fatal("capability index not cleaned on expiry")
		}
	})

	t.Run("names belong to owners", func(t *testing.T) {
		s := newStore(t)
		const victimKey = "key:" + "VICTIMVICTIMVICTIMVICTIMVICTIMVICTIMVICTIM="
		const otherKey = "key:" + "OTHEROTHEROTHEROTHEROTHEROTHEROTHEROTHEROT="
		owned := func(n int, name, owner string) Agent {
			a := testAgent(n, name, []string{"echo"})
			a.Owner = owner
			return a
		}
		if _, err := s.Register(ctx, owned(5, "echo", victimKey)); err != nil {
			t.Fatal(err)
		}
		// A lower id with the same name: by the plaintext (no owner) or another key.
		for _, owner := range []string{"", otherKey} {
			_, err := s.Register(ctx, owned(1, "echo", owner))
			var held *NameHeldError
			if !errors.As(err, &held) || held.Holder != agentID(5) || held.ByID {
				t.Fatalf("owner %q took the name: %v", owner, err)
			}
			// The same id as the victim's: refused too, and nothing changed.
			_, err = s.Register(ctx, owned(5, "other", owner))
			if !errors.As(err, &held) || !held.ByID {
				t.Fatalf("owner %q took the id: %v", owner, err)
			}
		}
		got, err := s.Get(ctx, agentID(5), t0)
		if err != nil || got.Owner != victimKey || got.Name != "echo" {
			t.Fatalf("the holder changed: %+v %v", got, err)
		}
		if _, err := s.Get(ctx, agentID(1), t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a refused registration was stored: %v", err)
		}
		// The owner may add agents of the name (replicas) and rename its own.
		if _, err := s.Register(ctx, owned(2, "echo", victimKey)); err != nil {
			t.Fatalf("a second agent of the owner: %v", err)
		}
		as, _, _ := s.Discover(ctx, Query{NamePrefix: "echo", Limit: 10}, t0)
		for _, a := range as {
			if a.Owner != victimKey {
				t.Fatalf("discover shows a stranger: %+v", a)
			}
		}
		if len(as) != 2 {
			t.Fatalf("discover: %v", ids(as))
		}
		// A renamed agent leaves the name: once every holder is gone or renamed, or its
		// lease ended, another owner may take it.
		if _, err := s.Deregister(ctx, agentID(2)); err != nil {
			t.Fatal(err)
		}
		r := owned(5, "echo2", victimKey)
		if _, err := s.Register(ctx, r); err != nil {
			t.Fatalf("rename: %v", err)
		}
		if _, err := s.Register(ctx, owned(1, "echo", otherKey)); err != nil {
			t.Fatalf("a free name: %v", err)
		}
		late := owned(3, "echo2", "")
		late.LastHeartbeat, late.RegisteredAt, late.ExpiresAt = t0.Add(31*time.Second), t0.Add(31*time.Second), t0.Add(61*time.Second)
		if _, err := s.Register(ctx, late); err != nil {
			t.Fatalf("a name whose lease ended: %v", err)
		}
	})

	t.Run("ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) Store { return NewMemoryStore() })
}

// aid is agentID(n) as an mxp.AgentID, for the wire payloads.
func aid(n int) mxp.AgentID {
	id, err := mxp.ParseAgentID(agentID(n))
	if err != nil {
		panic(err)
	}
	return id
}
