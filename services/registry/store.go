package registry

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store for an unknown agent.
var ErrNotFound = errors.New("registry: agent not found")

// Store keeps registrations and their leases. Implementations are safe for concurrent
// use and, for shared stores, across processes: every method is atomic.
type Store interface {
	// Register inserts a or replaces the agent with the same id. a.ExpiresAt,
	// a.LastHeartbeat and a.Lifecycle (zero for a fresh registration) are set by the
	// caller; RegisteredAt is kept from an existing record whose lease has not ended.
	// It returns the previous record, or nil for a new agent.
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
	// them. Across every process sharing the store, each expiry is returned exactly once.
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
