package mxp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
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

// AgentMetadata describes an agent: version, description and tags, plus any other string
// keys the agent sends (kept in Extra, stored and shown by the registry). It travels as
// one JSON object; decoding accepts "tags" as a list or as one comma-separated string (the
// reference SDK's string-map form of metadata) and refuses values of other keys that are
// not strings (an *MetadataError).
type AgentMetadata struct {
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Extra       map[string]string `json:"-"`
}

// MetadataError is the error of decoding metadata that is not an object of strings (tags
// aside). Decoders of the registry payloads report it as a PayloadError with
// CodeInvalidMetadata.
type MetadataError struct{ Reason string }

func (e *MetadataError) Error() string { return "metadata: " + e.Reason }

// MarshalJSON writes version (always), description and tags (when set) and Extra as one
// object, keys sorted; a key of Extra never overrides a field.
func (m AgentMetadata) MarshalJSON() ([]byte, error) { return m.appendJSON(nil) }

// appendJSON appends what MarshalJSON returns to dst; without Extra (the usual case) it
// writes the object itself, allocating nothing when dst has room.
func (m AgentMetadata) appendJSON(dst []byte) ([]byte, error) {
	if len(m.Extra) == 0 {
		dst = append(dst, `{"version":`...)
		dst = appendJSONString(dst, m.Version)
		if m.Description != "" {
			dst = append(dst, `,"description":`...)
			dst = appendJSONString(dst, m.Description)
		}
		if len(m.Tags) > 0 {
			dst = append(dst, `,"tags":`...)
			dst = appendJSONStrings(dst, m.Tags)
		}
		return append(dst, '}'), nil
	}
	obj := make(map[string]any, len(m.Extra)+3)
	for k, v := range m.Extra {
		obj[k] = v
	}
	obj["version"] = m.Version
	delete(obj, "description")
	delete(obj, "tags")
	if m.Description != "" {
		obj["description"] = m.Description
	}
	if len(m.Tags) > 0 {
		obj["tags"] = m.Tags
	}
	b, err := json.Marshal(obj) // encoding/json sorts map keys
	return append(dst, b...), err
}

// appendJSONString appends s as encoding/json encodes it. Printable ASCII that
// encoding/json does not escape is copied; any other string is encoded by encoding/json
// itself, so the bytes are always json.Marshal's (FuzzAppendJSON).
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendJSONStrings appends list as encoding/json encodes a []string (null when nil).
func appendJSONStrings(dst []byte, list []string) []byte {
	if list == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}

// UnmarshalJSON accepts the object form described on AgentMetadata; null is the zero
// value.
func (m *AgentMetadata) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*m = AgentMetadata{}
		return nil
	}
	if metadataKeysKnown(b) { // the usual object: decoded without a map
		return m.decodeKnown(b)
	}
	return m.decodeMap(b)
}

// decodeKnown decodes an object whose keys are only version, description and tags
// (metadataKeysKnown): the fast path, which must agree with decodeMap (FuzzMetadataPaths).
func (m *AgentMetadata) decodeKnown(b []byte) error {
	var list struct { // tags as a list, the usual form: one decoder pass
		Version     string   `json:"version"`
		Description string   `json:"description"`
		Tags        []string `json:"tags"`
	}
	if json.Unmarshal(b, &list) == nil {
		*m = AgentMetadata{Version: list.Version, Description: list.Description, Tags: list.Tags}
		return nil
	}
	var known struct {
		Version     string          `json:"version"`
		Description string          `json:"description"`
		Tags        json.RawMessage `json:"tags"`
	}
	if err := json.Unmarshal(b, &known); err != nil {
		return &MetadataError{Reason: "version and description must be strings"}
	}
	out := AgentMetadata{Version: known.Version, Description: known.Description}
	if err := out.decodeTags(known.Tags); err != nil {
		return err
	}
	*m = out
	return nil
}

// decodeMap decodes any metadata object, keeping other string keys in Extra.
func (m *AgentMetadata) decodeMap(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &MetadataError{Reason: "not a JSON object"}
	}
	out := AgentMetadata{}
	for k, v := range raw {
		if k == "tags" {
			if err := out.decodeTags(v); err != nil {
				return err
			}
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return &MetadataError{Reason: fmt.Sprintf("%.64q must be a string", k)}
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
	*m = out
	return nil
}

// decodeTags reads "tags": a JSON list of strings, one comma-separated string, or null.
func (m *AgentMetadata) decodeTags(v json.RawMessage) error {
	tags := bytes.TrimSpace(v)
	switch {
	case len(tags) == 0 || string(tags) == "null":
	case tags[0] == '"':
		var s string
		if err := json.Unmarshal(tags, &s); err != nil {
			return &MetadataError{Reason: "tags is not a string"}
		}
		for t := range strings.SplitSeq(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				m.Tags = append(m.Tags, t)
			}
		}
	default:
		if err := json.Unmarshal(tags, &m.Tags); err != nil {
			return &MetadataError{Reason: "tags must be a list of strings or a comma-separated string"}
		}
	}
	return nil
}

// metadataKeysKnown reports whether b, a valid JSON object, has no keys but "version",
// "description" and "tags" spelled without escapes, so that a struct can decode it. Any
// doubt (an escaped key, another key) answers false: the map path decodes every object.
func metadataKeysKnown(b []byte) bool {
	depth, key := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{', '[':
			depth++
			key = c == '{' && depth == 1
		case '}', ']':
			depth--
		case ',':
			key = depth == 1
		case '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					if key {
						return false
					}
					j++
				}
				j++
			}
			if key {
				switch string(b[i+1 : min(j, len(b))]) {
				case "version", "description", "tags":
				default:
					return false
				}
				key = false
			}
			i = j
		}
	}
	return true
}

// Validate checks the metadata: version at most MaxNameLen bytes, tags by CheckTag (at
// most MaxTags), and the whole at most MaxMetadataSize bytes of JSON. The error is a
// *PayloadError with CodeInvalidMetadata or CodeMetadataTooLarge.
func (m *AgentMetadata) Validate() error {
	const name = "RegisterRequest"
	if err := checkText(name, "metadata.version", m.Version, MaxNameLen); err != nil {
		return withCode(err, CodeInvalidMetadata)
	}
	if err := checkTokens(name, "tag", m.Tags, MaxTags, MaxTagLen, CodeInvalidMetadata, CodeInvalidMetadata); err != nil {
		return err
	}
	size := len(m.Version) + len(m.Description)
	for k, v := range m.Extra {
		size += len(k) + len(v)
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return &PayloadError{Payload: name, Reason: "metadata is not valid UTF-8", Code: CodeInvalidMetadata}
		}
	}
	if size > MaxMetadataSize || len(m.Tags)*MaxTagLen > MaxMetadataSize {
		b, err := json.Marshal(m)
		if err != nil {
			return &PayloadError{Payload: name, Reason: "metadata", Code: CodeInvalidMetadata, Err: err}
		}
		if len(b) > MaxMetadataSize {
			return &PayloadError{Payload: name, Reason: fmt.Sprintf("metadata is %d bytes of JSON (max %d)", len(b), MaxMetadataSize), Code: CodeMetadataTooLarge}
		}
	}
	return checkText(name, "metadata.description", m.Description, MaxMetadataSize)
}

// Validate checks the request against the profile's rules: a non-zero id, a name
// (CheckName), an address that is absent or has a port, 0 to MaxCapabilities capabilities (CheckCapability) and the metadata
// (AgentMetadata.Validate). The error is a *PayloadError whose Code names the field.
func (p *RegisterRequest) Validate() error {
	const name = "RegisterRequest"
	if p.ID.IsZero() {
		return &PayloadError{Payload: name, Reason: "missing id", Code: CodeInvalidAgentID}
	}
	if err := checkName(name, "name", p.Name); err != nil {
		return err
	}
	if p.Address.IsValid() && p.Address.Port() == 0 {
		return &PayloadError{Payload: name, Reason: "address " + p.Address.String() + " has port 0", Code: CodeInvalidAddress}
	}
	if err := checkTokens(name, "capability", p.Capabilities, MaxCapabilities, MaxCapabilityLen, CodeTooManyCapabilities, CodeInvalidCapability); err != nil {
		return err
	}
	return p.Metadata.Validate()
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

// HeartbeatRequest is the AgentHeartbeat payload: {"agent_id"}, and from this mesh's SDK
// also "metadata" (extra to the reference payload): the agent's lifecycle report, a JSON
// object such as {"state":"suspended","accepting":"false"}, at most
// MaxHeartbeatMetadataSize bytes, which the registry checks and stores (its README,
// "Lifecycle"). A heartbeat frame with FlagFinal deregisters the agent.
type HeartbeatRequest struct {
	AgentID  AgentID         `json:"agent_id"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// MaxHeartbeatMetadataSize bounds a heartbeat's metadata.
const MaxHeartbeatMetadataSize = 1 << 10

// Validate checks that the heartbeat names an agent and that its metadata, if any, is a
// JSON object of at most MaxHeartbeatMetadataSize bytes.
func (p *HeartbeatRequest) Validate() error {
	if p.AgentID.IsZero() {
		return &PayloadError{Payload: "HeartbeatRequest", Reason: "missing agent_id", Code: CodeInvalidAgentID}
	}
	md := bytes.TrimSpace(p.Metadata)
	switch {
	case len(md) == 0 || string(md) == "null":
	case len(md) > MaxHeartbeatMetadataSize:
		return &PayloadError{Payload: "HeartbeatRequest", Reason: fmt.Sprintf("metadata is %d bytes (max %d)", len(md), MaxHeartbeatMetadataSize), Code: CodeMetadataTooLarge}
	case md[0] != '{' || !json.Valid(md):
		return &PayloadError{Payload: "HeartbeatRequest", Reason: "metadata must be a JSON object", Code: CodeInvalidMetadata}
	}
	return nil
}

// DeregisterRequest removes an agent from the registry: {"agent_id"}. It is the body of
// the registry's deregister subject on the bus; an agent deregisters through its edge
// with a final heartbeat (HeartbeatRequest with FlagFinal).
type DeregisterRequest struct {
	AgentID AgentID `json:"agent_id"`
}

// Validate checks that the request names an agent.
func (p *DeregisterRequest) Validate() error {
	if p.AgentID.IsZero() {
		return &PayloadError{Payload: "DeregisterRequest", Reason: "missing agent_id", Code: CodeInvalidAgentID}
	}
	return nil
}

// DeregisterResponse answers a DeregisterRequest: {"success","agent_id","message"}.
type DeregisterResponse struct {
	Success bool    `json:"success"`
	AgentID AgentID `json:"agent_id"`
	Message string  `json:"message"`
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
// Results are ordered by agent id; After (extra to the reference payload) is the last id
// of the previous page (DiscoverResponse.NextAfter).
type DiscoverRequest struct {
	Capabilities  []string `json:"capabilities,omitempty"`
	Capability    string   `json:"capability,omitempty"`
	Name          string   `json:"name,omitempty"`
	NamePrefix    string   `json:"name_prefix,omitempty"`
	Tag           string   `json:"tag,omitempty"`
	AcceptingOnly bool     `json:"accepting_only,omitempty"`
	Limit         int      `json:"limit,omitempty"`
	After         string   `json:"after,omitempty"`
}

// Required returns every capability the request requires: Capabilities plus Capability,
// without duplicates.
func (p *DiscoverRequest) Required() []string {
	out := make([]string, 0, len(p.Capabilities)+1)
	for _, c := range p.Capabilities {
		if c != "" && !contains(out, c) {
			out = append(out, c)
		}
	}
	if c := p.Capability; c != "" && !contains(out, c) {
		out = append(out, c)
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

// Validate checks the filters (capabilities by CheckCapability, at most MaxCapabilities
// in all; name and prefix at most MaxNameLen bytes of UTF-8; the tag by CheckTag), the
// limit and the page token. The error is a *PayloadError with CodeInvalidCapability for
// a bad capability and CodeInvalidQuery otherwise.
func (p *DiscoverRequest) Validate() error {
	const name = "DiscoverRequest"
	n := len(p.Capabilities)
	if p.Capability != "" {
		n++
	}
	if n > MaxCapabilities {
		return &PayloadError{Payload: name, Reason: fmt.Sprintf("%d capabilities in the query (max %d)", n, MaxCapabilities), Code: CodeInvalidQuery}
	}
	if err := checkTokens(name, "capability", p.Capabilities, MaxCapabilities, MaxCapabilityLen, CodeInvalidQuery, CodeInvalidCapability); err != nil {
		return err
	}
	if p.Capability != "" {
		if err := checkToken(name, "capability", p.Capability, MaxCapabilityLen); err != nil {
			return withCode(err, CodeInvalidCapability)
		}
	}
	if err := checkText(name, "name", p.Name, MaxNameLen); err != nil {
		return withCode(err, CodeInvalidQuery)
	}
	if err := checkText(name, "name_prefix", p.NamePrefix, MaxNameLen); err != nil {
		return withCode(err, CodeInvalidQuery)
	}
	if p.Tag != "" {
		if err := checkToken(name, "tag", p.Tag, MaxTagLen); err != nil {
			return withCode(err, CodeInvalidQuery)
		}
	}
	if p.Limit < 0 || p.Limit > MaxDiscoverLimit {
		return &PayloadError{Payload: name, Reason: fmt.Sprintf("limit %d out of range [0, %d]", p.Limit, MaxDiscoverLimit), Code: CodeInvalidQuery}
	}
	if p.After != "" {
		if id, err := ParseAgentID(p.After); err != nil || id.IsZero() {
			return &PayloadError{Payload: name, Reason: fmt.Sprintf("after %.64q is not an agent id", p.After), Code: CodeInvalidQuery}
		}
	}
	return nil
}

// DiscoverResponse answers a DiscoverRequest with the matching agents. Capability echoes
// the request's first required capability, for the reference SDK. NextAfter is set when
// more results may follow: pass it as DiscoverRequest.After.
type DiscoverResponse struct {
	Capability string        `json:"capability"`
	Agents     []AgentRecord `json:"agents"`
	Count      int           `json:"count"`
	NextAfter  string        `json:"next_after,omitempty"`
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

// UnmarshalJSON reads a JSON string; the known statuses are the constants themselves, so
// that a discovery answer does not allocate one string per record for them.
func (s *AgentStatus) UnmarshalJSON(b []byte) error {
	for _, k := range [...]AgentStatus{StatusOnline, StatusDegraded, StatusOffline} {
		if isQuoted(b, string(k)) {
			*s = k
			return nil
		}
	}
	return unmarshalString(b, (*string)(s))
}

// AgentState is an agent's health in this mesh's spelling (AgentRecord.State).
type AgentState string

// The agent states of AgentRecord.State (this mesh's registry; the reference SDK reads
// Status).
const (
	StateOnline   AgentState = "online"   // heartbeating on time
	StateExpiring AgentState = "expiring" // missed at least one heartbeat; the lease has not ended yet
)

// UnmarshalJSON reads a JSON string; the known states are the constants themselves (no
// allocation per record).
func (s *AgentState) UnmarshalJSON(b []byte) error {
	for _, k := range [...]AgentState{StateOnline, StateExpiring} {
		if isQuoted(b, string(k)) {
			*s = k
			return nil
		}
	}
	return unmarshalString(b, (*string)(s))
}

// isQuoted reports whether b is exactly the JSON string "s" written without escapes.
func isQuoted(b []byte, s string) bool {
	return len(b) == len(s)+2 && b[0] == '"' && b[len(b)-1] == '"' && string(b[1:len(b)-1]) == s
}

// unmarshalString decodes a JSON string (or null, which leaves *s as it is, as
// encoding/json does for a string field).
func unmarshalString(b []byte, s *string) error {
	if string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, s)
}

// RecordMetadata is an AgentRecord's full metadata (AgentMetadata, Extra keys included).
// The registry sets it from a registration (MetadataOf). A decoded record keeps the JSON
// object as it arrived, undecoded: a discovery answer carries one per agent and its
// callers mostly read the record's own Version, Description and Tags, so the object is
// parsed only when Decode is called. It encodes as the object it holds (omitted when
// zero). It is small (a string and a pointer) because a discovery answer is a slice of
// records.
type RecordMetadata struct {
	raw string         // the object as received; "" when set from an AgentMetadata
	md  *AgentMetadata // as set by MetadataOf
}

// MetadataOf returns *m as a record's metadata. The record refers to m, which must not
// change while the record is in use.
func MetadataOf(m *AgentMetadata) RecordMetadata { return RecordMetadata{md: m} }

// Decode returns the metadata. For a received object it parses it as
// AgentMetadata.UnmarshalJSON does; an object that is not metadata (a value of another key
// that is not a string, tags of the wrong type) is a *PayloadError with
// CodeInvalidMetadata.
func (m RecordMetadata) Decode() (AgentMetadata, error) {
	switch {
	case m.md != nil:
		return *m.md, nil
	case m.raw == "":
		return AgentMetadata{}, nil
	}
	var out AgentMetadata
	if err := out.UnmarshalJSON([]byte(m.raw)); err != nil {
		return AgentMetadata{}, &PayloadError{Payload: "AgentRecord", Reason: "bad metadata", Code: CodeInvalidMetadata, Err: err}
	}
	return out, nil
}

// IsZero reports whether the record carries no metadata (omitted from its JSON).
func (m RecordMetadata) IsZero() bool {
	return m.raw == "" && (m.md == nil || m.md.Version == "" && m.md.Description == "" && m.md.Tags == nil && m.md.Extra == nil)
}

// MarshalJSON writes the object received, or the AgentMetadata set.
func (m RecordMetadata) MarshalJSON() ([]byte, error) {
	switch {
	case m.md != nil:
		return m.md.MarshalJSON()
	case m.raw == "":
		return []byte("null"), nil
	}
	return []byte(m.raw), nil
}

// UnmarshalJSON keeps a copy of the object for Decode; null is the zero value. Anything
// but an object is a *MetadataError (encoding/json has checked that b is valid JSON).
func (m *RecordMetadata) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*m = RecordMetadata{}
	case len(b) == 0 || b[0] != '{':
		return &MetadataError{Reason: "not a JSON object"}
	default:
		*m = RecordMetadata{raw: string(b)}
	}
	return nil
}

// AgentRecord is one agent in a DiscoverResponse (and in the registry's HTTP API and
// events). Status says whether heartbeats arrive on time; State (extra to the reference
// payload) says the same in this mesh's spelling (StateOnline, StateExpiring);
// Lifecycle and Accepting (extra, absent until the agent reports them in its heartbeat
// metadata) are the agent's own lifecycle state ("active", "suspended", ...) and whether
// it takes new calls. LeaseExpiresAt and Metadata (extra) are the registration's lease
// end and its full metadata, Extra keys included (decoded on demand: RecordMetadata).
type AgentRecord struct {
	ID             AgentID        `json:"id"`
	Name           string         `json:"name"`
	Version        string         `json:"version"`
	Description    string         `json:"description,omitempty"`
	Capabilities   []string       `json:"capabilities"`
	Tags           []string       `json:"tags,omitempty"`
	Address        netip.AddrPort `json:"address"`
	State          AgentState     `json:"state,omitempty"`
	Status         AgentStatus    `json:"status"`
	Lifecycle      string         `json:"lifecycle,omitempty"`
	Accepting      *bool          `json:"accepting,omitempty"`
	LastHeartbeat  time.Time      `json:"last_heartbeat"`
	RegisteredAt   time.Time      `json:"registered_at"`
	LeaseExpiresAt time.Time      `json:"lease_expires_at,omitzero"`
	Metadata       RecordMetadata `json:"metadata,omitzero"`
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
		pe := &PayloadError{Payload: reflect.TypeFor[T]().Name(), Reason: "malformed JSON", Err: err}
		var (
			me  *MetadataError
			ide *AgentIDError
		)
		switch {
		case errors.As(err, &me):
			pe.Reason, pe.Code = "bad metadata", CodeInvalidMetadata
		case errors.As(err, &ide):
			pe.Reason, pe.Code = "bad agent id", CodeInvalidAgentID
		}
		return *new(T), pe
	}
	if err := PT(&v).Validate(); err != nil {
		return *new(T), err
	}
	return v, nil
}

// AppendPayload validates p and appends its JSON encoding to dst: the bytes json.Marshal
// writes for p (TestRegisterAppendMatchesMarshal, FuzzAppendJSON), written directly
// because an agent registers on every reconnect and lease loss.
func (p *RegisterRequest) AppendPayload(dst []byte) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return dst, err
	}
	dst = append(dst, `{"id":"`...)
	dst, _ = p.ID.AppendText(dst)
	dst = append(dst, `","name":`...)
	dst = appendJSONString(dst, p.Name)
	dst = append(dst, `,"capabilities":`...)
	dst = appendJSONStrings(dst, p.Capabilities)
	dst = append(dst, `,"address":`...)
	if p.Address.Addr().Zone() != "" { // a zone is any text: escaped as encoding/json would
		dst = appendJSONString(dst, p.Address.String())
	} else {
		dst = append(dst, '"')
		if p.Address.IsValid() { // the zero value is "" (MarshalText)
			dst = p.Address.AppendTo(dst)
		}
		dst = append(dst, '"')
	}
	dst = append(dst, `,"metadata":`...)
	dst, err := p.Metadata.appendJSON(dst)
	return append(dst, '}'), err
}

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
func (p *DeregisterRequest) AppendPayload(dst []byte) ([]byte, error) { return appendJSON(dst, p) }

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

// DecodeDeregisterRequest parses and validates the body of the registry's deregister
// subject.
func DecodeDeregisterRequest(b []byte) (DeregisterRequest, error) {
	return decodeJSON[DeregisterRequest](b)
}

// DecodeErrorPayload parses and validates an Error payload. A legacy spelling of a code
// ("payload_too_large", ...) is returned as its canonical code (ErrorCode.Canonical).
func DecodeErrorPayload(b []byte) (ErrorPayload, error) {
	p, err := decodeJSON[ErrorPayload](b)
	p.Code = p.Code.Canonical()
	return p, err
}
