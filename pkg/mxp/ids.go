package mxp

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// AgentID identifies an agent or a service on the mesh: a UUID, written in its usual text
// form ("6ba7b810-9dad-11d1-80b4-00c04fd430c8") in JSON payloads and as 16 raw bytes in
// binary ones. The zero AgentID means "none".
type AgentID [16]byte

// NewAgentID returns a random (version 4) AgentID.
func NewAgentID() AgentID { return AgentID(uuid.New()) }

// ParseAgentID parses a UUID in its usual text form; it also accepts the forms
// uuid.Parse does (urn:uuid: prefix, braces, 32 hex digits).
func ParseAgentID(s string) (AgentID, error) {
	u, err := uuid.Parse(strings.TrimSpace(s))
	if err != nil {
		return AgentID{}, &AgentIDError{Text: s, Err: err}
	}
	return AgentID(u), nil
}

// AgentIDError is the error of ParseAgentID (and of decoding an AgentID from JSON): Text
// is not a UUID. Decoders of payloads report it with CodeInvalidAgentID.
type AgentIDError struct {
	Text string
	Err  error
}

func (e *AgentIDError) Error() string {
	return fmt.Sprintf("mxp: invalid agent id %.64q: %v", e.Text, e.Err)
}

// Unwrap returns uuid's error.
func (e *AgentIDError) Unwrap() error { return e.Err }

// String returns the UUID text form.
func (id AgentID) String() string { return uuid.UUID(id).String() }

// IsZero reports whether id is the zero (absent) id.
func (id AgentID) IsZero() bool { return id == AgentID{} }

// MarshalText encodes id as its UUID text form (JSON uses it).
func (id AgentID) MarshalText() ([]byte, error) {
	return uuid.UUID(id).MarshalText()
}

// AppendText appends the UUID text form of id to b (what MarshalText returns), without
// allocating when b has room.
func (id AgentID) AppendText(b []byte) ([]byte, error) {
	b = hex.AppendEncode(b, id[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, id[10:]), nil
}

// UnmarshalText parses a UUID text form; the empty string is the zero id (the reference
// SDK sends "agent_id": "" in failed answers).
func (id *AgentID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*id = AgentID{}
		return nil
	}
	if u, err := uuid.ParseBytes(b); err == nil { // the usual form, without a string copy
		*id = AgentID(u)
		return nil
	}
	v, err := ParseAgentID(string(b)) // surrounding space, or the error to report
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// The well-known services of the mesh. An agent calls a service by putting its id in the
// target of a Call (or StreamOpen); the edge routes it to the service over the bus.
var (
	ServiceRegistry  = AgentID{15: 0xf1} // 00000000-0000-0000-0000-0000000000f1: register, heartbeat, discover
	ServiceInference = AgentID{15: 0xf2} // 00000000-0000-0000-0000-0000000000f2: model completions
	ServiceTools     = AgentID{15: 0xf3} // 00000000-0000-0000-0000-0000000000f3: tool catalogue and invocation
	ServicePolicy    = AgentID{15: 0xf4} // 00000000-0000-0000-0000-0000000000f4: allow, deny, escalate
)

var services = [...]struct {
	name string
	id   AgentID
}{
	{"registry", ServiceRegistry},
	{"inference", ServiceInference},
	{"tools", ServiceTools},
	{"policy", ServicePolicy},
}

// ServiceByName returns the id of the well-known service named name ("registry",
// "inference", "tools", "policy"; case-insensitive).
func ServiceByName(name string) (AgentID, bool) {
	for _, s := range services {
		if strings.EqualFold(s.name, name) {
			return s.id, true
		}
	}
	return AgentID{}, false
}

// ServiceName returns the name of the well-known service with the given id.
func ServiceName(id AgentID) (string, bool) {
	for _, s := range services {
		if s.id == id {
			return s.name, true
		}
	}
	return "", false
}

// ServiceNames returns the names of the well-known services.
func ServiceNames() []string {
	out := make([]string, len(services))
	for i, s := range services {
		out[i] = s.name
	}
	return out
}
