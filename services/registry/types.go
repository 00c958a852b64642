package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Metadata is the descriptive part of a registration: version, description and tags,
// plus any other string fields the agent sends (kept in Extra). Tags may arrive as a JSON
// list or, from SDKs whose metadata is a string map, as a comma-separated string.
type Metadata struct {
	Version     string            `json:"version,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Extra       map[string]string `json:"-"`
}

// MarshalJSON writes the known fields and Extra as one object, keys sorted.
func (m Metadata) MarshalJSON() ([]byte, error) {
	obj := map[string]any{}
	for k, v := range m.Extra {
		obj[k] = v
	}
	if m.Version != "" {
		obj["version"] = m.Version
	}
	if m.Description != "" {
		obj["description"] = m.Description
	}
	if len(m.Tags) > 0 {
		obj["tags"] = m.Tags
	}
	return json.Marshal(obj) // encoding/json sorts map keys
}

// UnmarshalJSON accepts the object form described on Metadata.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*m = Metadata{}
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("metadata must be an object: %w", err)
	}
	out := Metadata{}
	for k, v := range raw {
		switch k {
		case "tags":
			var list []string
			if err := json.Unmarshal(v, &list); err == nil {
				out.Tags = list
				continue
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("metadata.tags must be a list of strings or a comma-separated string")
			}
			for t := range strings.SplitSeq(s, ",") {
				if t = strings.TrimSpace(t); t != "" {
					out.Tags = append(out.Tags, t)
				}
			}
		default:
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("metadata.%s must be a string", k)
			}
			switch k {
			case "version":
				out.Version = s
			case "description":
				out.Description = s
			default:
				if out.Extra == nil {
					out.Extra = map[string]string{}
				}
				out.Extra[k] = s
			}
		}
	}
	*m = out
	return nil
}

// RegisterRequest is the AgentRegister payload.
type RegisterRequest struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
	Address      string   `json:"address"`
	Metadata     Metadata `json:"metadata"`
}

// RegisterResponse answers a registration.
type RegisterResponse struct {
	Success bool   `json:"success"`
	AgentID string `json:"agent_id"`
	Message string `json:"message"`
	// LeaseSeconds and HeartbeatSeconds tell the agent how often to heartbeat (extra to
	// the reference payload; older SDKs ignore them).
	LeaseSeconds     float64 `json:"lease_seconds,omitempty"`
	HeartbeatSeconds float64 `json:"heartbeat_interval_seconds,omitempty"`
}

// HeartbeatRequest renews a lease. Metadata is optional (extra to the reference
// payload): the agent's lifecycle, {"state": "suspended", "accepting": false}, checked by
// validateHeartbeatMetadata and stored with the lease (see Lifecycle).
type HeartbeatRequest struct {
	AgentID  string          `json:"agent_id"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// DeregisterRequest removes an agent. (A final heartbeat's metadata, if any, is ignored.)
type DeregisterRequest struct {
	AgentID string `json:"agent_id"`
}

// HeartbeatResponse answers a heartbeat. NeedsRegister is true for an unknown (or already
// expired) agent, which should register again.
type HeartbeatResponse struct {
	Success       bool      `json:"success"`
	NeedsRegister bool      `json:"needs_register"`
	AgentID       string    `json:"agent_id"`
	Timestamp     time.Time `json:"timestamp"`
	Message       string    `json:"message,omitempty"`
}

// DeregisterResponse answers a deregistration.
type DeregisterResponse struct {
	Success bool   `json:"success"`
	AgentID string `json:"agent_id"`
	Message string `json:"message"`
}

// DiscoverRequest finds agents. Capability (the reference SDK's single filter) and
// Capabilities are combined: every listed capability is required. Name (the exact name,
// served from the registry's name index, so lookalike names cannot push it off a page),
// NamePrefix and Tag narrow further. AcceptingOnly leaves out agents whose last heartbeat reported that they
// take no new calls (suspended, retiring); agents that report nothing are kept. It is off
// by default, so a plain query lists every registered agent with its lifecycle. Results
// are ordered by agent id; After is the last id of the previous page (NextAfter of the
// previous response).
type DiscoverRequest struct {
	Capability    string   `json:"capability,omitempty"`
	Capabilities  []string `json:"capabilities,omitempty"`
	Name          string   `json:"name,omitempty"`
	NamePrefix    string   `json:"name_prefix,omitempty"`
	Tag           string   `json:"tag,omitempty"`
	AcceptingOnly bool     `json:"accepting_only,omitempty"`
	Limit         int      `json:"limit,omitempty"`
	After         string   `json:"after,omitempty"`
}

// DiscoverResponse lists matching agents.
type DiscoverResponse struct {
	Capability string        `json:"capability,omitempty"`
	Agents     []AgentRecord `json:"agents"`
	Count      int           `json:"count"`
	// NextAfter is set when more results may follow; pass it as After.
	NextAfter string `json:"next_after,omitempty"`
}

// State of a registered agent.
const (
	StateOnline   = "online"   // heartbeating on time
	StateExpiring = "expiring" // missed at least one heartbeat; the lease has not ended yet
)

// AgentRecord is an agent as discovery and the HTTP API show it. Status repeats State in
// the reference SDK's spelling (Online, Degraded) for its clients. State and Status say
// whether heartbeats arrive on time; Lifecycle and Accepting are what the agent last
// reported about itself in a heartbeat (omitted until it reports them).
type AgentRecord struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Version        string    `json:"version"`
	Description    string    `json:"description,omitempty"`
	Capabilities   []string  `json:"capabilities"`
	Tags           []string  `json:"tags,omitempty"`
	Address        string    `json:"address"`
	State          string    `json:"state"`
	Status         string    `json:"status"`
	Lifecycle      string    `json:"lifecycle,omitempty"`
	Accepting      *bool     `json:"accepting,omitempty"`
	LastHeartbeat  time.Time `json:"last_heartbeat"`
	RegisteredAt   time.Time `json:"registered_at"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	Metadata       Metadata  `json:"metadata"`
	// Owner is the identity holding the agent's name (Agent.Owner); omitted when empty.
	Owner string `json:"owner,omitempty"`
}

// Event is the body of mxp.registry.events.*.
type Event struct {
	Type      string      `json:"type"` // registered, deregistered, expired, lifecycle
	Agent     AgentRecord `json:"agent"`
	Timestamp time.Time   `json:"timestamp"`
	// LagSeconds is, for expired events, how long after the lease end the event was sent.
	LagSeconds float64 `json:"lag_seconds,omitempty"`
	// Previous is, for lifecycle events, what the agent reported before (omitted when it
	// had reported nothing since registering).
	Previous *Lifecycle `json:"previous,omitempty"`
}

// Agent is a stored registration.
type Agent struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Capabilities  []string  `json:"capabilities"`
	Address       string    `json:"address"`
	Metadata      Metadata  `json:"metadata"`
	RegisteredAt  time.Time `json:"-"`
	LastHeartbeat time.Time `json:"-"`
	ExpiresAt     time.Time `json:"-"`
	// Lifecycle is what the agent last reported in a heartbeat; a registration resets it.
	Lifecycle Lifecycle `json:"-"`
	// Owner is the verified identity that registered the agent: "key:<public key>" from
	// the edge's Mxp-Owner header, or "" for a registration without one (the plaintext
	// listener, a service on the bus). While a lease lives, every agent of one name, and
	// every registration of one id, has the same owner: the stores refuse a registration
	// that would break this with a *NameHeldError.
	Owner string `json:"-"`
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

// Record renders a for clients; heartbeatInterval decides online vs expiring.
func (a Agent) Record(now time.Time, heartbeatInterval time.Duration) AgentRecord {
	state, status := StateOnline, "Online"
	if now.Sub(a.LastHeartbeat) > heartbeatInterval {
		state, status = StateExpiring, "Degraded"
	}
	caps := append([]string(nil), a.Capabilities...)
	sort.Strings(caps)
	return AgentRecord{
		ID: a.ID, Name: a.Name, Version: a.Metadata.Version, Description: a.Metadata.Description,
		Capabilities: caps, Tags: a.Metadata.Tags, Address: a.Address, State: state, Status: status,
		LastHeartbeat: a.LastHeartbeat.UTC(), RegisteredAt: a.RegisteredAt.UTC(), LeaseExpiresAt: a.ExpiresAt.UTC(),
		Metadata: a.Metadata, Lifecycle: a.Lifecycle.State, Accepting: a.Lifecycle.Accepting, Owner: a.Owner,
	}
}
