package registry

import (
	"container/heap"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryStore keeps registrations in process: a map by id, an index per capability, a
// claim per name (its owner, its agents, the end of the claim), a min-heap of lease ends
// and one of the ends of claims no agent holds any more. It serves one registry replica.
type MemoryStore struct {
	mu     sync.RWMutex
	grace  time.Duration
	agents map[string]*memEntry
	byCap  map[string]map[string]struct{}
	byName map[string]*nameClaim
	leases deadlineHeap[*memEntry]
	// vacant holds the claims whose last agent is gone, by claim end, so PopExpired drops
	// them once they end (the memory of names is bounded by the agents and the grace).
	vacant deadlineHeap[*nameClaim]
}

type memEntry struct {
	agent   Agent
	index   int // position in the lease heap
	namePos int // position of the id in its name's claim.ids
}

// MemoryOptions configure NewMemoryStoreWith.
type MemoryOptions struct {
	// NameClaimGrace is how long a name stays claimed by its owner after the last lease
	// of its agents ends (see nameClaim); 0 or negative: not at all.
	NameClaimGrace time.Duration
}

// NewMemoryStore returns an empty store without a name claim grace.
func NewMemoryStore() *MemoryStore { return NewMemoryStoreWith(MemoryOptions{}) }

// NewMemoryStoreWith returns an empty store configured by o.
func NewMemoryStoreWith(o MemoryOptions) *MemoryStore {
	return &MemoryStore{grace: max(o.NameClaimGrace, 0), agents: map[string]*memEntry{},
		byCap: map[string]map[string]struct{}{}, byName: map[string]*nameClaim{}}
}

// Register implements Store.
func (s *MemoryStore) Register(_ context.Context, a Agent) (*Agent, error) {
	a.Capabilities = slices.Clone(a.Capabilities)
	a.Lifecycle = a.Lifecycle.clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.heldLocked(a); err != nil {
		return nil, err
	}
	if e, ok := s.agents[a.ID]; ok {
		prev := e.agent
		s.unindex(e)
		if prev.ExpiresAt.After(a.LastHeartbeat) { // an ended lease starts afresh
			a.RegisteredAt = prev.RegisteredAt
		}
		e.agent = a
		s.index(e)
		heap.Fix(&s.leases, e.index)
		return &prev, nil
	}
	e := &memEntry{agent: a}
	s.agents[a.ID] = e
	s.index(e)
	heap.Push(&s.leases, e)
	return nil, nil
}

// heldLocked returns a *NameHeldError when a live agent of another owner holds a.ID, or
// another owner's claim on a.Name has not ended (see Store.Register): two lookups, however
// many agents share the name. Called with s.mu held.
func (s *MemoryStore) heldLocked(a Agent) error {
	now := a.LastHeartbeat
	if e, ok := s.agents[a.ID]; ok && e.agent.ExpiresAt.After(now) && e.agent.Owner != a.Owner {
		return &NameHeldError{Name: a.Name, Holder: a.ID, ByID: true}
	}
	if c := s.byName[a.Name]; c != nil && c.owner != a.Owner && c.heldAt(now, s.grace) {
		h := ""
		if len(c.ids) > 0 {
			h = c.ids[0]
		}
		return &NameHeldError{Name: a.Name, Holder: h}
	}
	return nil
}

// index adds e's agent to its name's claim (taking the claim for its owner when the
// previous one ended: heldLocked said so) and to its capabilities.
// Contract: called with s.mu held, after heldLocked accepted e.agent.
func (s *MemoryStore) index(e *memEntry) {
	a := e.agent
	c := s.byName[a.Name]
	switch {
	case c == nil:
		c = &nameClaim{name: a.Name, owner: a.Owner, vacantIdx: -1}
		s.byName[a.Name] = c
	case c.owner != a.Owner: // the other owner's claim ended
		c.owner, c.leaseEnd = a.Owner, time.Time{}
	}
	if c.vacantIdx >= 0 {
		heap.Remove(&s.vacant, c.vacantIdx)
	}
	c.extend(a.ExpiresAt)
	e.namePos = len(c.ids)
	c.ids = append(c.ids, a.ID)
	for _, c := range a.Capabilities {
		set := s.byCap[c]
		if set == nil {
			set = map[string]struct{}{}
			s.byCap[c] = set
		}
		set[a.ID] = struct{}{}
	}
}

// unindex removes e's agent from its name's claim and its capabilities. A claim left
// without agents is kept until it ends (the grace) and dropped by PopExpired, or at once
// when it has already ended.
// Contract: called with s.mu held.
func (s *MemoryStore) unindex(e *memEntry) {
	a := e.agent
	if c := s.byName[a.Name]; c != nil && e.namePos < len(c.ids) && c.ids[e.namePos] == a.ID {
		last := len(c.ids) - 1
		if e.namePos != last {
			moved := c.ids[last]
			c.ids[e.namePos] = moved
			s.agents[moved].namePos = e.namePos
		}
		c.ids[last] = ""
		c.ids = c.ids[:last]
		if len(c.ids) == 0 {
			if s.grace > 0 {
				c.ids = nil
				heap.Push(&s.vacant, c)
			} else {
				delete(s.byName, a.Name)
			}
		}
	}
	for _, c := range a.Capabilities {
		if set := s.byCap[c]; set != nil {
			delete(set, a.ID)
			if len(set) == 0 {
				delete(s.byCap, c)
			}
		}
	}
}

// Heartbeat implements Store.
func (s *MemoryStore) Heartbeat(_ context.Context, id string, now, expires time.Time, lc *Lifecycle) (Lifecycle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.agents[id]
	if !ok || !e.agent.ExpiresAt.After(now) {
		return Lifecycle{}, ErrNotFound
	}
	e.agent.LastHeartbeat = now
	e.agent.ExpiresAt = expires
	heap.Fix(&s.leases, e.index)
	if c := s.byName[e.agent.Name]; c != nil && c.owner == e.agent.Owner {
		c.extend(expires)
	}
	if lc == nil {
		return Lifecycle{}, nil
	}
	prev := e.agent.Lifecycle
	e.agent.Lifecycle = lc.clone()
	return prev, nil
}

// Deregister implements Store.
func (s *MemoryStore) Deregister(_ context.Context, id string) (Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.agents[id]
	if !ok {
		return Agent{}, ErrNotFound
	}
	s.removeLocked(e)
	return e.agent, nil
}

func (s *MemoryStore) removeLocked(e *memEntry) {
	heap.Remove(&s.leases, e.index)
	s.unindex(e)
	delete(s.agents, e.agent.ID)
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, id string, now time.Time) (Agent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.agents[id]
	if !ok || !e.agent.ExpiresAt.After(now) {
		return Agent{}, ErrNotFound
	}
	return e.agent, nil
}

// Discover implements Store.
func (s *MemoryStore) Discover(_ context.Context, q Query, now time.Time) ([]Agent, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	match := func(a *Agent) bool {
		if a.ID <= q.After || !a.ExpiresAt.After(now) {
			return false
		}
		if q.Name != "" && a.Name != q.Name {
			return false
		}
		if q.NamePrefix != "" && !strings.HasPrefix(a.Name, q.NamePrefix) {
			return false
		}
		if q.Tag != "" && !a.hasTag(q.Tag) {
			return false
		}
		if q.AcceptingOnly && !a.Lifecycle.AcceptsCalls() {
			return false
		}
		for _, c := range q.Capabilities {
			if _, ok := s.byCap[c][a.ID]; !ok {
				return false
			}
		}
		return true
	}
	// Keep only the Limit+1 smallest matching ids (a bounded max-heap), so a page costs
	// O(k log Limit) for k candidates instead of sorting all of them.
	top := &idHeap{max: q.Limit + 1}
	var named []string
	if q.Name != "" {
		if c := s.byName[q.Name]; c != nil {
			named = c.ids
		}
	}
	switch {
	case q.Name != "" && (len(q.Capabilities) == 0 || len(named) <= len(s.byCap[q.Capabilities[0]])):
		// Walk the agents of the name; capabilities are checked by lookup.
		for _, id := range named {
			if top.wants(id) && match(&s.agents[id].agent) {
				top.offer(id)
			}
		}
	case len(q.Capabilities) > 0:
		// Walk the smallest capability set; the others are checked by lookup.
		smallest := s.byCap[q.Capabilities[0]]
		for _, c := range q.Capabilities[1:] {
			if len(s.byCap[c]) < len(smallest) {
				smallest = s.byCap[c]
			}
		}
		for id := range smallest {
			if top.wants(id) && match(&s.agents[id].agent) {
				top.offer(id)
			}
		}
	default:
		for id, e := range s.agents {
			if top.wants(id) && match(&e.agent) {
				top.offer(id)
			}
		}
	}
	ids := top.sorted()
	more := len(ids) > q.Limit
	if more {
		ids = ids[:q.Limit]
	}
	out := make([]Agent, len(ids))
	for i, id := range ids {
		out[i] = s.agents[id].agent
	}
	return out, more, nil
}

// PopExpired implements Store.
func (s *MemoryStore) PopExpired(_ context.Context, now time.Time, limit int) ([]Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Agent
	for len(s.leases) > 0 && len(out) < limit {
		e := s.leases[0]
		if e.agent.ExpiresAt.After(now) {
			break
		}
		s.removeLocked(e)
		out = append(out, e.agent)
	}
	for len(s.vacant) > 0 && !s.vacant[0].heldAt(now, s.grace) {
		delete(s.byName, heap.Pop(&s.vacant).(*nameClaim).name)
	}
	return out, nil
}

// Count implements Store.
func (s *MemoryStore) Count(context.Context) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.agents), nil
}

// Ping implements Store.
func (s *MemoryStore) Ping(context.Context) error { return nil }

// Close implements Store.
func (s *MemoryStore) Close() error { return nil }

// Kind implements Store.
func (s *MemoryStore) Kind() string { return "memory" }

// idHeap keeps the max smallest ids offered: a max-heap whose root is the largest kept.
type idHeap struct {
	ids []string
	max int
}

// wants reports whether id would be kept (cheap pre-check before matching).
func (h *idHeap) wants(id string) bool { return len(h.ids) < h.max || id < h.ids[0] }

func (h *idHeap) offer(id string) {
	if len(h.ids) < h.max {
		h.ids = append(h.ids, id)
		for i := len(h.ids) - 1; i > 0; { // sift up
			p := (i - 1) / 2
			if h.ids[p] >= h.ids[i] {
				break
			}
			h.ids[p], h.ids[i] = h.ids[i], h.ids[p]
			i = p
		}
		return
	}
	h.ids[0] = id
	for i := 0; ; { // sift down
		l, r, big := 2*i+1, 2*i+2, i
		if l < len(h.ids) && h.ids[l] > h.ids[big] {
			big = l
		}
		if r < len(h.ids) && h.ids[r] > h.ids[big] {
			big = r
		}
		if big == i {
			return
		}
		h.ids[i], h.ids[big] = h.ids[big], h.ids[i]
		i = big
	}
}

func (h *idHeap) sorted() []string {
	slices.Sort(h.ids)
	return h.ids
}

// nameClaim is an owner's claim on a name: held while an agent of the name has a lease
// running, and for the grace after the last of those leases ends (whether the agents were
// deregistered, expired or renamed), so that a restarting owner finds its name free of
// squatters. Checking it is O(1) however many agents share the name.
type nameClaim struct {
	name     string
	owner    string
	leaseEnd time.Time // the latest lease end of the owner's agents of this name
	ids      []string  // the agents of the name (any owner, ended leases until popped)
	// vacantIdx is the position in MemoryStore.vacant, -1 while agents hold the name.
	vacantIdx int
}

// heldAt reports whether the claim still holds at now, given the grace.
func (c *nameClaim) heldAt(now time.Time, grace time.Duration) bool {
	return c.leaseEnd.Add(grace).After(now)
}

// extend moves the claim's end to cover a lease of its owner ending at end.
func (c *nameClaim) extend(end time.Time) {
	if end.After(c.leaseEnd) {
		c.leaseEnd = end
	}
}

// deadlined is an element of a deadlineHeap: it knows its deadline and is told its position
// (-1 once popped), so that heap.Fix and heap.Remove can find it in O(1).
type deadlined interface {
	deadline() time.Time
	setHeapIndex(int)
}

// deadlineHeap orders elements by deadline (earliest first); it is the one heap behind the
// store's leases and its vacant name claims.
type deadlineHeap[T deadlined] []T

func (h deadlineHeap[T]) Len() int           { return len(h) }
func (h deadlineHeap[T]) Less(i, j int) bool { return h[i].deadline().Before(h[j].deadline()) }
func (h deadlineHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].setHeapIndex(i)
	h[j].setHeapIndex(j)
}
func (h *deadlineHeap[T]) Push(x any) {
	e := x.(T)
	e.setHeapIndex(len(*h))
	*h = append(*h, e)
}
func (h *deadlineHeap[T]) Pop() any {
	old := *h
	e := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	*h = old[:len(old)-1]
	e.setHeapIndex(-1)
	return e
}

func (e *memEntry) deadline() time.Time  { return e.agent.ExpiresAt }
func (e *memEntry) setHeapIndex(i int)   { e.index = i }
func (c *nameClaim) deadline() time.Time { return c.leaseEnd }
func (c *nameClaim) setHeapIndex(i int)  { c.vacantIdx = i }
