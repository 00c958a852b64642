package registry

import (
	"encoding/json"
	"net/netip"
	"sort"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// The registry's wire types (RegisterRequest, HeartbeatRequest, DeregisterRequest,
// DiscoverRequest and their answers, AgentRecord, AgentMetadata) and their limits are
// pkg/mxp's: the registry decodes and checks with the same functions as the edge and the
// SDK, so a registration one accepts the others accept. What is the registry's own is
// below: its events and how it stores an agent.

// Event is the body of mxp.registry.events.*.
type Event struct {
	Type      string          `json:"type"` // registered, deregistered, expired, lifecycle
	Agent     mxp.AgentRecord `json:"agent"`
	Timestamp time.Time       `json:"timestamp"`
	// LagSeconds is, for expired events, how long after the lease end the event was sent.
	LagSeconds float64 `json:"lag_seconds,omitempty"`
	// Previous is, for lifecycle events, what the agent reported before (omitted when it
	// had reported nothing since registering).
	Previous *Lifecycle `json:"previous,omitempty"`
}

// Agent is a stored registration.
type Agent struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Capabilities  []string          `json:"capabilities"`
	Address       string            `json:"address"`
	Metadata      mxp.AgentMetadata `json:"metadata"`
	RegisteredAt  time.Time         `json:"-"`
	LastHeartbeat time.Time         `json:"-"`
	ExpiresAt     time.Time         `json:"-"`
	// Lifecycle is what the agent last reported in a heartbeat; a registration resets it.
	Lifecycle Lifecycle `json:"-"`
	// Owner is the verified identity that registered the agent: "key:<public key>" from
	// the edge's Mxp-Owner header, or "" for a registration without one (the plaintext
	// listener, a service on the bus). While a lease lives, every agent of one name, and
	// every registration of one id, has the same owner: the stores refuse a registration
	// that would break this with a *NameHeldError.
	Owner string `json:"-"`

	// wireID is ID as a pkg/mxp type, set at registration so that Record need not parse
	// it for every record of every discovery answer; zero for an agent loaded from a store
	// that keeps only the string (Record parses then). Address is parsed by Record: a
	// cached netip.AddrPort made an Agent 296 bytes, and a discovery page of 100 of them
	// (MemoryStore.Discover's copy) a 32 KiB allocation instead of 27 KiB
	// (BenchmarkDiscover100k).
	wireID mxp.AgentID
}

// descriptor is the JSON of the fields an agent controls (used to detect a changed
// re-registration and stored as is by the Redis store).
func (a Agent) descriptor() []byte {
	b, _ := json.Marshal(a)
	return b
}

// hasTag reports whether the agent carries tag.
func (a Agent) hasTag(tag string) bool {
	for _, t := range a.Metadata.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Record renders a for clients; heartbeatInterval decides online vs expiring. A stored id
// is canonical and a stored address "" or ip:port (both checked at registration), so
// neither parse fails; a record stored before addresses were IP-only shows none. The
// record's Metadata refers to a.Metadata (mxp.MetadataOf), so a must outlive the record
// unchanged, as a store's copy does.
func (a *Agent) Record(now time.Time, heartbeatInterval time.Duration) mxp.AgentRecord {
	state, status := mxp.StateOnline, mxp.StatusOnline
	if now.Sub(a.LastHeartbeat) > heartbeatInterval {
		state, status = mxp.StateExpiring, mxp.StatusDegraded
	}
	caps := append([]string(nil), a.Capabilities...)
	sort.Strings(caps)
	id := a.wireID
	if id.IsZero() {
		id, _ = mxp.ParseAgentID(a.ID)
	}
	var addr netip.AddrPort
	if a.Address != "" {
		addr, _ = netip.ParseAddrPort(a.Address)
	}
	return mxp.AgentRecord{
		ID: id, Name: a.Name, Version: a.Metadata.Version, Description: a.Metadata.Description,
		Capabilities: caps, Tags: a.Metadata.Tags, Address: addr, State: state, Status: status,
		LastHeartbeat: a.LastHeartbeat.UTC(), RegisteredAt: a.RegisteredAt.UTC(), LeaseExpiresAt: a.ExpiresAt.UTC(),
		Metadata: mxp.MetadataOf(&a.Metadata), Lifecycle: a.Lifecycle.State, Accepting: a.Lifecycle.Accepting, Owner: a.Owner,
	}
}
