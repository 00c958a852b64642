package registry

import (
	"container/heap"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryStore keeps registrations in process: a map by id, an index per capability and
// per name, and a min-heap of lease ends. It serves one registry replica.
type MemoryStore struct {
	mu     sync.RWMutex
	agents map[string]*memEntry
	byCap  map[string]map[string]struct{}
	// byName lists the ids holding each name, for the owner check of Register. A slice,
	// not a set: most names have one agent, and 100,000 one-entry maps cost the garbage
	// collector measurably (Discover100k) where 100,000 one-element slices do not.
	byName map[string][]string
	leases leaseHeap
}

type memEntry struct {
	agent Agent
	index int // position in the lease heap
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{agents: map[string]*memEntry{}, byCap: map[string]map[string]struct{}{},
		byName: map[string][]string{}}
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
		s.unindex(prev)
		if prev.ExpiresAt.After(a.LastHeartbeat) { // an ended lease starts afresh
			a.RegisteredAt = prev.RegisteredAt
		}
		e.agent = a
		s.index(a)
		heap.Fix(&s.leases, e.index)
		return &prev, nil
	}
	e := &memEntry{agent: a}
	s.agents[a.ID] = e
	s.index(a)
	heap.Push(&s.leases, e)
	return nil, nil
}

// heldLocked returns a *NameHeldError when a live agent of another owner holds a.ID or
// a.Name (see Store.Register). Called with s.mu held.
func (s *MemoryStore) heldLocked(a Agent) error {
	now := a.LastHeartbeat
	if e, ok := s.agents[a.ID]; ok && e.agent.ExpiresAt.After(now) && e.agent.Owner != a.Owner {
		return &NameHeldError{Name: a.Name, Holder: a.ID, ByID: true}
	}
	for _, id := range s.byName[a.Name] {
		if h := s.agents[id].agent; id != a.ID && h.ExpiresAt.After(now) && h.Owner != a.Owner {
			return &NameHeldError{Name: a.Name, Holder: id}
		}
	}
	return nil
}

func (s *MemoryStore) index(a Agent) {
	s.byName[a.Name] = append(s.byName[a.Name], a.ID)
	for _, c := range a.Capabilities {
		set := s.byCap[c]
		if set == nil {
			set = map[string]struct{}{}
			s.byCap[c] = set
		}
		set[a.ID] = struct{}{}
	}
}

func (s *MemoryStore) unindex(a Agent) {
	if ids := slices.DeleteFunc(s.byName[a.Name], func(id string) bool { return id == a.ID }); len(ids) > 0 {
		s.byName[a.Name] = ids
	} else {
		delete(s.byName, a.Name)
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
	s.unindex(e.agent)
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
	if len(q.Capabilities) > 0 {
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
	} else {
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

// leaseHeap orders entries by lease end (earliest first).
type leaseHeap []*memEntry

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].agent.ExpiresAt.Before(h[j].agent.ExpiresAt) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *leaseHeap) Push(x any) {
	e := x.(*memEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *leaseHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

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
