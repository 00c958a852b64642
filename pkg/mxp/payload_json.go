package mxp

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"time"
)

// The JSON payloads of the agent lifecycle, field for field those of the reference agents
// SDK (mxp-agents 0.2.1), so its agents register, heartbeat and discover through our edge
// unchanged. A request travels in a frame of its type (AgentRegister, AgentHeartbeat,
// AgentDiscover); its answer in a Response frame with the request's message id, or an Error
// frame with an ErrorPayload.
//
// Every Decode function parses, then validates (the Validate method); every AppendPayload
// validates, then encodes, so that neither side sends what the other would reject.

// RegisterRequest is the AgentRegister payload:
// {"id","name","capabilities":[...],"address":"ip:port","metadata":{"version","description","tags"}}.
type RegisterRequest struct {
	ID           AgentID        `json:"id"`
	Name         string         `json:"name"`
	Capabilities []string       `json:"capabilities"`
	Address      netip.AddrPort `json:"address"` // where the agent listens; the zero value encodes as "" (reached through its edge)
	Metadata     AgentMetadata  `json:"metadata"`
}

// AgentMetadata describes an agent. Decoding accepts "tags" as a list or as one
// comma-separated string (the reference SDK's string-map form of metadata).
type AgentMetadata struct {
	Version     string   `json:"version"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// UnmarshalJSON accepts tags as a JSON list or a comma-separated string; other keys are
// ignored.
func (m *AgentMetadata) UnmarshalJSON(b []byte) error {
	var raw struct {
		Version     string          `json:"version"`
		Description string          `json:"description"`
		Tags        json.RawMessage `json:"tags"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = AgentMetadata{Version: raw.Version, Description: raw.Description}
	tags := bytes.TrimSpace(raw.Tags)
	switch {
	case len(tags) == 0 || string(tags) == "null":
	case tags[0] == '"':
		var s string
		if err := json.Unmarshal(tags, &s); err != nil {
			return err
		}
		for _, t := range strings.Split(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				m.Tags = append(m.Tags, t)
			}
		}
	default:
		if err := json.Unmarshal(tags, &m.Tags); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the request against the profile's rules: a non-zero id, a name, 0 to
// MaxCapabilities capabilities and 0 to MaxTags tags without spaces.
func (p *RegisterRequest) Validate() error {
	const name = "RegisterRequest"
	if p.ID.IsZero() {
		return payloadErr(name, "missing id")
	}
	if strings.TrimSpace(p.Name) == "" {
		return payloadErr(name, "missing name")
	}
	if err := checkText(name, "name", p.Name, MaxNameLen); err != nil {
		return err
	}
	if err := checkTokens(name, "capability", p.Capabilities, MaxCapabilities, MaxCapabilityLen); err != nil {
		return err
	}
	if err := checkText(name, "metadata.version", p.Metadata.Version, MaxNameLen); err != nil {
		return err
	}
	if err := checkText(name, "metadata.description", p.Metadata.Description, 4<<10); err != nil {
		return err
	}
	return checkTokens(name, "tag", p.Metadata.Tags, MaxTags, MaxTagLen)
}

// RegisterResponse answers a RegisterRequest: {"success","agent_id","message"}, and from
// this mesh's registry also "lease_seconds" and "heartbeat_interval_seconds": how long the
// registration lives without a heartbeat and how often the agent should heartbeat (both
// omitted, zero, when the registry does not say).
type RegisterResponse struct {
	Success          bool    `json:"success"`
	AgentID          AgentID `json:"agent_id"`
	Message          string  `json:"message"`
	LeaseSeconds     float64 `json:"lease_seconds,omitempty"`
	HeartbeatSeconds float64 `json:"heartbeat_interval_seconds,omitempty"`
}

// Validate checks that a successful answer names the agent, and that the lease and
// heartbeat interval, when given, are not negative and the interval is shorter than the
// lease.
func (p *RegisterResponse) Validate() error {
	const name = "RegisterResponse"
	if p.Success && p.AgentID.IsZero() {
		return payloadErr(name, "success without agent_id")
	}
	if p.LeaseSeconds < 0 || p.HeartbeatSeconds < 0 {
		return payloadErr(name, "negative lease_seconds (%g) or heartbeat_interval_seconds (%g)", p.LeaseSeconds, p.HeartbeatSeconds)
	}
	if p.LeaseSeconds > 0 && p.HeartbeatSeconds >= p.LeaseSeconds {
		return payloadErr(name, "heartbeat_interval_seconds %g not shorter than lease_seconds %g", p.HeartbeatSeconds, p.LeaseSeconds)
	}
	return nil
}

// maxHintSeconds bounds the durations a RegisterResponse can express, so that a huge
// value cannot overflow a time.Duration (about 292 years).
const maxHintSeconds = float64(365 * 24 * 3600)

// HeartbeatInterval is the interval the registry asked for (at most a year), or 0 when it
// did not say; the agent then uses its own default.
func (p *RegisterResponse) HeartbeatInterval() time.Duration {
	return time.Duration(min(p.HeartbeatSeconds, maxHintSeconds) * float64(time.Second))
}

// HeartbeatRequest is the AgentHeartbeat payload: {"agent_id"}. A heartbeat frame with
// FlagFinal deregisters the agent.
type HeartbeatRequest struct {
	AgentID AgentID `json:"agent_id"`
}

// Validate checks that the heartbeat names an agent.
func (p *HeartbeatRequest) Validate() error {
	if p.AgentID.IsZero() {
		return payloadErr("HeartbeatRequest", "missing agent_id")
	}
	return nil
}

// HeartbeatResponse answers a HeartbeatRequest:
// {"success","needs_register","agent_id","timestamp","message"}. NeedsRegister tells an
// agent the registry has forgotten it (lease expired, registry restarted) and it must send
// AgentRegister again.
type HeartbeatResponse struct {
	Success       bool      `json:"success"`
	NeedsRegister bool      `json:"needs_register"`
	AgentID       AgentID   `json:"agent_id"`
	Timestamp     time.Time `json:"timestamp"` // the registry's clock, RFC 3339
	Message       string    `json:"message,omitempty"`
}

// Validate checks that the answer names the agent.
func (p *HeartbeatResponse) Validate() error {
	if p.AgentID.IsZero() {
		return payloadErr("HeartbeatResponse", "missing agent_id")
	}
	return nil
}

// DiscoverRequest is the AgentDiscover payload: find agents that have every one of
// Capabilities, whose name is Name, whose name starts with NamePrefix and that carry Tag
// (each filter optional; none lists every agent), at most Limit of them (0: the registry's default;
// MaxDiscoverLimit at most). Capability is the reference SDK's single-capability filter;
// it joins Capabilities. AcceptingOnly (extra to the reference payload) leaves out agents
// whose heartbeats report that they take no new calls (suspended, retiring); agents that
// report nothing are kept. Name is served from the registry's name index: resolve a name
// with it, never with NamePrefix, which agents named with that prefix can fill a page of.
type DiscoverRequest struct {
	Capabilities  []string `json:"capabilities,omitempty"`
	Capability    string   `json:"capability,omitempty"`
	Name          string   `json:"name,omitempty"`
	NamePrefix    string   `json:"name_prefix,omitempty"`
	Tag           string   `json:"tag,omitempty"`
	AcceptingOnly bool     `json:"accepting_only,omitempty"`
	Limit         int      `json:"limit,omitempty"`
}

// Required returns every capability the request requires: Capabilities plus Capability,
// without duplicates.
func (p *DiscoverRequest) Required() []string {
	out := make([]string, 0, len(p.Capabilities)+1)
	for _, c := range append(p.Capabilities, p.Capability) {
		if c != "" && !contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Validate checks the filters and the limit.
func (p *DiscoverRequest) Validate() error {
	const name = "DiscoverRequest"
	if err := checkTokens(name, "capability", p.Capabilities, MaxCapabilities, MaxCapabilityLen); err != nil {
		return err
	}
	if p.Capability != "" {
		if err := checkToken(name, "capability", p.Capability, MaxCapabilityLen); err != nil {
			return err
		}
	}
	if err := checkText(name, "name", p.Name, MaxNameLen); err != nil {
		return err
	}
	if err := checkText(name, "name_prefix", p.NamePrefix, MaxNameLen); err != nil {
		return err
	}
	if p.Tag != "" {
		if err := checkToken(name, "tag", p.Tag, MaxTagLen); err != nil {
			return err
		}
	}
	if p.Limit < 0 || p.Limit > MaxDiscoverLimit {
		return payloadErr(name, "limit %d out of range [0, %d]", p.Limit, MaxDiscoverLimit)
	}
	return nil
}

// DiscoverResponse answers a DiscoverRequest with the matching agents. Capability echoes
// the request's first required capability, for the reference SDK.
type DiscoverResponse struct {
	Capability string        `json:"capability"`
	Agents     []AgentRecord `json:"agents"`
	Count      int           `json:"count"`
}

// Validate checks that Count matches Agents and every record names an agent.
func (p *DiscoverResponse) Validate() error {
	if p.Count != len(p.Agents) {
		return payloadErr("DiscoverResponse", "count %d but %d agents", p.Count, len(p.Agents))
	}
	for i := range p.Agents {
		if p.Agents[i].ID.IsZero() {
			return payloadErr("DiscoverResponse", "agent %d has no id", i)
		}
	}
	return nil
}

// AgentStatus is an agent's health as the registry sees it.
type AgentStatus string

// The agent statuses (spelled as the reference SDK spells them).
const (
	StatusOnline   AgentStatus = "Online"   // heartbeats arrive within the lease
	StatusOffline  AgentStatus = "Offline"  // the lease ran out
	StatusDegraded AgentStatus = "Degraded" // online but reporting trouble
)

// AgentRecord is one agent in a DiscoverResponse. Status says whether heartbeats arrive
// on time; Lifecycle and Accepting (extra to the reference payload, absent until the agent
// reports them in its heartbeat metadata) are the agent's own lifecycle state ("active",
// "suspended", ...) and whether it takes new calls.
type AgentRecord struct {
	ID            AgentID        `json:"id"`
	Name          string         `json:"name"`
	Version       string         `json:"version"`
	Description   string         `json:"description,omitempty"`
	Capabilities  []string       `json:"capabilities"`
	Tags          []string       `json:"tags,omitempty"`
	Address       netip.AddrPort `json:"address"`
	Status        AgentStatus    `json:"status"`
	Lifecycle     string         `json:"lifecycle,omitempty"`
	Accepting     *bool          `json:"accepting,omitempty"`
	LastHeartbeat time.Time      `json:"last_heartbeat"`
	RegisteredAt  time.Time      `json:"registered_at"`
	// Owner is the identity that holds the agent's name: "key:<public key>" for an agent
	// registered over the secure transport, empty for one registered without a verified
	// key (the plaintext listener). Agents of one name share one owner (docs/protocol.md).
	Owner string `json:"owner,omitempty"`
}

// ErrorPayload is the Error payload: {"error","code"}, a message for people and an
// ErrorCode for programs. An Error frame carries the message id of the frame that failed.
type ErrorPayload struct {
	Error string    `json:"error"`
	Code  ErrorCode `json:"code"`
}

// NewErrorPayload describes err for the peer that caused it: its message and
// ErrorCodeFor(err).
func NewErrorPayload(err error) ErrorPayload {
	return ErrorPayload{Error: err.Error(), Code: ErrorCodeFor(err)}
}

// Err returns the payload as a *RemoteError.
func (p *ErrorPayload) Err() error { return &RemoteError{Code: p.Code, Message: p.Error} }

// Validate checks that the code is present and well-formed.
func (p *ErrorPayload) Validate() error {
	if p.Code == "" {
		return payloadErr("ErrorPayload", "missing code")
	}
	if err := checkToken("ErrorPayload", "code", string(p.Code), MaxErrorCodeLen); err != nil {
		return err
	}
	return checkText("ErrorPayload", "error", p.Error, MaxPayloadSize)
}

// validator is implemented by every JSON payload.
type validator interface{ Validate() error }

// appendJSON validates v, then appends its JSON encoding to dst.
func appendJSON(dst []byte, v validator) ([]byte, error) {
	if err := v.Validate(); err != nil {
		return dst, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// decodeJSON parses b into a T and validates it; any failure is a *PayloadError and a
// zero T.
func decodeJSON[T any, PT interface {
	*T
	validator
}](b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return *new(T), &PayloadError{Payload: reflect.TypeFor[T]().Name(), Reason: "malformed JSON", Err: err}
	}
	if err := PT(&v).Validate(); err != nil {
		return *new(T), err
	}
	return v, nil
}

// AppendPayload validates p and appends its JSON encoding to dst.
func (p *RegisterRequest) AppendPayload(dst []byte) ([]byte, error) { return appendJSON(dst, p) }

// AppendPayload validates p and appends its JSON encoding to dst.
func (p *RegisterResponse) AppendPayload(dst []byte) ([]byte, error) { return appendJSON(dst, p) }

// AppendPayload validates p and appends its JSON encoding to dst.
func (p *HeartbeatRequest) AppendPayload(dst []byte) ([]byte, error) { return appendJSON(dst, p) }

// AppendPayload validates p and appends its JSON encoding to dst.
func (p *HeartbeatResponse) AppendPayload(dst []byte) ([]byte, error) { return appendJSON(dst, p) }

// AppendPayload validates p and appends its JSON encoding to dst.
func (p *DiscoverRequest) AppendPayload(dst []byte) ([]byte, error) { return appendJSON(dst, p) }

// AppendPayload validates p and appends its JSON encoding to dst.
func (p *DiscoverResponse) AppendPayload(dst []byte) ([]byte, error) { return appendJSON(dst, p) }

// AppendPayload validates p and appends its JSON encoding to dst.
func (p *ErrorPayload) AppendPayload(dst []byte) ([]byte, error) { return appendJSON(dst, p) }

// DecodeRegisterRequest parses and validates an AgentRegister payload.
func DecodeRegisterRequest(b []byte) (RegisterRequest, error) {
	return decodeJSON[RegisterRequest](b)
}

// DecodeRegisterResponse parses and validates the Response to an AgentRegister.
func DecodeRegisterResponse(b []byte) (RegisterResponse, error) {
	return decodeJSON[RegisterResponse](b)
}

// DecodeHeartbeatRequest parses and validates an AgentHeartbeat payload.
func DecodeHeartbeatRequest(b []byte) (HeartbeatRequest, error) {
	return decodeJSON[HeartbeatRequest](b)
}

// DecodeHeartbeatResponse parses and validates the Response to an AgentHeartbeat.
func DecodeHeartbeatResponse(b []byte) (HeartbeatResponse, error) {
	return decodeJSON[HeartbeatResponse](b)
}

// DecodeDiscoverRequest parses and validates an AgentDiscover payload.
func DecodeDiscoverRequest(b []byte) (DiscoverRequest, error) {
	return decodeJSON[DiscoverRequest](b)
}

// DecodeDiscoverResponse parses and validates the Response to an AgentDiscover.
func DecodeDiscoverResponse(b []byte) (DiscoverResponse, error) {
	return decodeJSON[DiscoverResponse](b)
}

// DecodeErrorPayload parses and validates an Error payload.
func DecodeErrorPayload(b []byte) (ErrorPayload, error) {
	return decodeJSON[ErrorPayload](b)
}
