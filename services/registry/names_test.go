package registry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// graceStoreFactory returns a fresh, empty store with the given name claim grace.
type graceStoreFactory func(t *testing.T, grace time.Duration) Store

// runNameSuite is the name ownership suite every Store implementation passes: the exact
// name filter and the claim that outlives its agents by the grace.
func runNameSuite(t *testing.T, newStore graceStoreFactory) {
	ctx := context.Background()
	const victimKey = "key:" + "VICTIMVICTIMVICTIMVICTIMVICTIMVICTIMVICTIM="
	const otherKey = "key:" + "OTHEROTHEROTHEROTHEROTHEROTHEROTHEROTHEROT="
	owned := func(n int, name, owner string, at time.Time) Agent {
		a := testAgent(n, name, []string{"echo"})
		a.Owner, a.RegisteredAt, a.LastHeartbeat, a.ExpiresAt = owner, at, at, at.Add(30*time.Second)
		return a
	}
	held := func(err error) bool {
		var h *NameHeldError
		return errors.As(err, &h) && !h.ByID
	}

	// Lookalike names with lower ids fill any page a prefix query returns; the exact
	// filter still finds the agent, alone.
	t.Run("exact name among lookalikes", func(t *testing.T) {
		s := newStore(t, 0)
		for i := 1; i <= 40; i++ {
			if _, err := s.Register(ctx, owned(i, fmt.Sprintf("echo%d", i), otherKey, t0)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Register(ctx, owned(1000, "echo", victimKey, t0)); err != nil {
			t.Fatal(err)
		}
		if as, _, _ := s.Discover(ctx, Query{NamePrefix: "echo", Limit: 10}, t0); len(as) != 10 || as[0].Name == "echo" {
			t.Fatalf("prefix page: %v", ids(as))
		}
		for _, q := range []Query{{Name: "echo", Limit: 10}, {Name: "echo", Capabilities: []string{"echo"}, Limit: 1}} {
			as, more, err := s.Discover(ctx, q, t0)
			if err != nil || more || len(as) != 1 || as[0].ID != agentID(1000) {
				t.Fatalf("exact %+v: %v more=%v err=%v", q, ids(as), more, err)
			}
		}
		if as, _, _ := s.Discover(ctx, Query{Name: "echo", Capabilities: []string{"nope"}, Limit: 10}, t0); len(as) != 0 {
			t.Fatalf("exact name with a capability nobody has: %v", ids(as))
		}
		if as, _, _ := s.Discover(ctx, Query{Name: "ech", Limit: 10}, t0); len(as) != 0 {
			t.Fatalf("a prefix is not the name: %v", ids(as))
		}
		// Renamed and deregistered agents leave the name's index.
		if _, err := s.Register(ctx, owned(1000, "echo-renamed", victimKey, t0)); err != nil {
			t.Fatal(err)
		}
		if as, _, _ := s.Discover(ctx, Query{Name: "echo", Limit: 10}, t0); len(as) != 0 {
			t.Fatalf("renamed agent still listed: %v", ids(as))
		}
	})

	// An agent killed and deregistered (dead-peer detection) leaves its owner's claim:
	// nobody else takes the name until its lease would have ended plus the grace.
	t.Run("claim outlives its agents by the grace", func(t *testing.T) {
		const grace = 20 * time.Second
		s := newStore(t, grace)
		if _, err := s.Register(ctx, owned(5, "echo", victimKey, t0)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Deregister(ctx, agentID(5)); err != nil {
			t.Fatal(err)
		}
		// The lease would have ended at t0+30s; the claim holds until t0+50s.
		for _, at := range []time.Duration{time.Second, 49 * time.Second} {
			for _, owner := range []string{"", otherKey} {
				if _, err := s.Register(ctx, owned(1, "echo", owner, t0.Add(at))); !held(err) {
					t.Fatalf("owner %q took a claimed name at +%v: %v", owner, at, err)
				}
			}
		}
		// The owner restarts (a new id, the same key) and takes its name back.
		if _, err := s.Register(ctx, owned(6, "echo", victimKey, t0.Add(2*time.Second))); err != nil {
			t.Fatalf("the owner's restart refused: %v", err)
		}
		// Heartbeats extend the claim: expiry at t0+2s+30s+10s, claim until +62s.
		if _, err := s.Heartbeat(ctx, agentID(6), t0.Add(12*time.Second), t0.Add(42*time.Second), nil); err != nil {
			t.Fatal(err)
		}
		if got, err := s.PopExpired(ctx, t0.Add(42*time.Second), 10); err != nil || len(got) != 1 {
			t.Fatalf("pop: %v %v", got, err)
		}
		if _, err := s.Register(ctx, owned(1, "echo", otherKey, t0.Add(61*time.Second))); !held(err) {
			t.Fatalf("another key took the name within the grace of a renewed lease: %v", err)
		}
		// After the grace, the claim has ended: the name is free (PopExpired forgets it).
		if _, err := s.PopExpired(ctx, t0.Add(62*time.Second), 10); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Register(ctx, owned(1, "echo", otherKey, t0.Add(62*time.Second))); err != nil {
			t.Fatalf("a name whose claim ended: %v", err)
		}
		if _, err := s.Register(ctx, owned(7, "echo", victimKey, t0.Add(63*time.Second))); !held(err) {
			t.Fatalf("the old owner took back a name claimed since: %v", err)
		}
	})

	// A rename leaves a claim on the old name too, for the same owner.
	t.Run("rename keeps the claim on the old name", func(t *testing.T) {
		s := newStore(t, 20*time.Second)
		if _, err := s.Register(ctx, owned(5, "echo", victimKey, t0)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Register(ctx, owned(5, "echo2", victimKey, t0.Add(time.Second))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Register(ctx, owned(1, "echo", otherKey, t0.Add(2*time.Second))); !held(err) {
			t.Fatalf("another key took the old name at once: %v", err)
		}
		if _, err := s.Register(ctx, owned(2, "echo", victimKey, t0.Add(2*time.Second))); err != nil {
			t.Fatalf("the owner back on its old name: %v", err)
		}
	})

	// Without a grace (negative name_claim_grace), a name is free once no lease holds it.
	t.Run("no grace", func(t *testing.T) {
		s := newStore(t, 0)
		if _, err := s.Register(ctx, owned(5, "echo", victimKey, t0)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Deregister(ctx, agentID(5)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Register(ctx, owned(1, "echo", otherKey, t0.Add(time.Second))); err != nil {
			t.Fatalf("without a grace the name is free: %v", err)
		}
	})

	// Many agents of one name: every registration and removal keeps the one claim right.
	t.Run("many agents of one name", func(t *testing.T) {
		s := newStore(t, 0)
		const n = 200
		for i := 1; i <= n; i++ {
			if _, err := s.Register(ctx, owned(i, "echo", victimKey, t0)); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i < n; i += 2 {
			if _, err := s.Deregister(ctx, agentID(i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Register(ctx, owned(n+1, "echo", otherKey, t0)); !held(err) {
			t.Fatalf("another key with %d agents holding the name: %v", n/2, err)
		}
		as, more, _ := s.Discover(ctx, Query{Name: "echo", Limit: n}, t0)
		if len(as) != n/2 || more {
			t.Fatalf("exact name lists %d agents (more=%v), want %d", len(as), more, n/2)
		}
		for i := 2; i <= n; i += 2 {
			if _, err := s.Deregister(ctx, agentID(i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Register(ctx, owned(n+1, "echo", otherKey, t0)); err != nil {
			t.Fatalf("every holder gone, no grace: %v", err)
		}
	})
}

func TestMemoryStoreNames(t *testing.T) {
	runNameSuite(t, func(t *testing.T, grace time.Duration) Store {
		return NewMemoryStoreWith(MemoryOptions{NameClaimGrace: grace})
	})
}

// TestMemoryStoreForgetsVacantClaims: claims without agents are dropped once they end, so
// names registered and deregistered do not accumulate.
func TestMemoryStoreForgetsVacantClaims(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStoreWith(MemoryOptions{NameClaimGrace: 10 * time.Second})
	for i := 1; i <= 100; i++ {
		if _, err := s.Register(ctx, testAgent(i, fmt.Sprintf("n%d", i), nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Deregister(ctx, agentID(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.byName) != 100 || len(s.vacant) != 100 {
		t.Fatalf("claims %d, vacant %d, want 100 each within the grace", len(s.byName), len(s.vacant))
	}
	if _, err := s.PopExpired(ctx, t0.Add(40*time.Second), 10); err != nil {
		t.Fatal(err)
	}
	if len(s.byName) != 0 || len(s.vacant) != 0 {
		t.Fatalf("claims %d, vacant %d after the grace, want 0", len(s.byName), len(s.vacant))
	}
}
