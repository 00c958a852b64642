package registry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by a Store for an unknown agent.
var ErrNotFound = errors.New("registry: agent not found")

// NameHeldError is returned by Store.Register when the agent's name (or its id) is held,
// under a lease that has not ended, by an agent of another owner.
type NameHeldError struct {
	Name   string // the name asked for
	Holder string // the id of an agent holding it; "" for a claim no agent holds (the grace)
	ByID   bool   // the id itself is held by another owner (not only the name)
}

func (e *NameHeldError) Error() string {
	switch {
	case e.ByID:
		return fmt.Sprintf("registry: agent %s is registered by another identity", e.Holder)
	case e.Holder == "":
		return fmt.Sprintf("registry: agent name %q is claimed by another identity (the grace after its agents left)", e.Name)
	}
	return fmt.Sprintf("registry: agent name %q is held by another identity (agent %s)", e.Name, e.Holder)
}

// Store keeps registrations and their leases. Implementations are safe for concurrent
// use and, for shared stores, across processes: every method is atomic.
type Store interface {
	// Register inserts a or replaces the agent with the same id. a.ExpiresAt,
	// a.LastHeartbeat and a.Lifecycle (zero for a fresh registration) are set by the
	// caller; RegisteredAt is kept from an existing record whose lease has not ended.
	// It returns the previous record, or nil for a new agent.
	// Contract: names belong to owners. When an agent of another owner than a.Owner holds
	// a.ID under a lease still running at a.LastHeartbeat, or another owner's claim on
	// a.Name has not ended by then (the claim lasts while that owner's agents of the name
	// have leases and for the store's name claim grace after the last one ends), nothing
	// is written and a *NameHeldError is returned; the check costs O(1) however many
	// agents share the name, and the check and the write are one atomic step.
	Register(ctx context.Context, a Agent) (prev *Agent, err error)
	// Heartbeat records a heartbeat at now and moves the lease end to expires. When lc is
	// not nil it replaces the stored lifecycle, and the one it replaced is returned (the
	// zero Lifecycle when lc is nil). It returns ErrNotFound for an unknown agent or one
	// whose lease already ended.
	Heartbeat(ctx context.Context, id string, now, expires time.Time, lc *Lifecycle) (prev Lifecycle, err error)
	// Deregister removes an agent and returns it (ErrNotFound when unknown).
	Deregister(ctx context.Context, id string) (Agent, error)
	// Get returns an agent whose lease has not ended at now.
	Get(ctx context.Context, id string, now time.Time) (Agent, error)
	// Discover returns up to q.Limit agents matching q (q.AcceptingOnly: whose Lifecycle
	// AcceptsCalls) with a lease still running at now,
	// ordered by id, starting after q.After. more reports whether results may follow.
	Discover(ctx context.Context, q Query, now time.Time) (agents []Agent, more bool, err error)
	// PopExpired removes up to limit agents whose lease ended at or before now and returns
	// them (and forgets name claims that ended without agents). Across every process sharing the store, each expiry is returned exactly once.
	PopExpired(ctx context.Context, now time.Time, limit int) ([]Agent, error)
	// Count is the number of agents held (including ended leases not yet popped).
	Count(ctx context.Context) (int, error)
	// Ping checks the store is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
	// Kind names the implementation ("memory", "redis") for logs.
	Kind() string
}
