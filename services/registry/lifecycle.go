package registry

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Lifecycle states an agent may report in its heartbeat metadata (the Go SDK's names).
// Other names of the same shape are stored as sent.
const (
	LifecycleActive     = "active"
	LifecycleSuspended  = "suspended"
	LifecycleRetiring   = "retiring"
	LifecycleTerminated = "terminated"
)

// Heartbeat metadata limits.
const (
	MaxLifecycleLen              = 32                           // bytes of [a-z0-9_-], starting with a letter
	DefaultHeartbeatMetadataSize = mxp.MaxHeartbeatMetadataSize // bytes of the metadata object's JSON (the most pkg/mxp lets through)
)

// Lifecycle is what an agent last reported about itself in a heartbeat's metadata:
// {"state": "suspended", "accepting": false}. Both parts are optional; the zero value
// means the agent has reported nothing since it registered (a registration resets it).
type Lifecycle struct {
	// State is the agent's lifecycle state, lower case ("active", "suspended", ...);
	// empty when unknown.
	State string `json:"state,omitempty"`
	// Accepting tells whether the agent takes new calls; nil when unknown.
	Accepting *bool `json:"accepting,omitempty"`
}

// Known reports whether the agent has reported anything.
func (l Lifecycle) Known() bool { return l.State != "" || l.Accepting != nil }

// AcceptsCalls reports whether the agent may be called: true unless it reported that it
// does not accept calls (an agent that reports nothing, like the reference SDK's, is
// assumed to accept them).
func (l Lifecycle) AcceptsCalls() bool { return l.Accepting == nil || *l.Accepting }

// Equal reports whether l and o say the same thing.
func (l Lifecycle) Equal(o Lifecycle) bool {
	if l.State != o.State || (l.Accepting == nil) != (o.Accepting == nil) {
		return false
	}
	return l.Accepting == nil || *l.Accepting == *o.Accepting
}

// changedFrom reports whether a heartbeat reporting l, over the stored prev, is news
// worth a lifecycle event: a reported state or acceptance that differs from the one
// stored, or a first report (after registration) that the agent does not accept calls.
// A first report of an active, accepting agent is not news: it was assumed.
func (l Lifecycle) changedFrom(prev Lifecycle) bool {
	if prev.Known() {
		return !l.Equal(prev)
	}
	return !l.AcceptsCalls()
}

// clone returns l with its own copy of Accepting (stores never share a caller's pointer).
func (l Lifecycle) clone() Lifecycle {
	if l.Accepting != nil {
		l.Accepting = boolPtr(*l.Accepting)
	}
	return l
}

// boolPtr returns a pointer to a copy of v.
func boolPtr(v bool) *bool { return &v }

// validateHeartbeatMetadata checks a heartbeat's optional metadata and returns the
// lifecycle it reports, or nil when it reports nothing (absent, null or no known key).
//
// The metadata must be a JSON object of at most maxBytes bytes whose values are strings,
// numbers, booleans or null. "state" is a string of [a-z0-9_-] starting with a letter
// (matched case-insensitively, stored lower case); "accepting" is a boolean or the
// string "true" / "false" (the Go SDK sends its metadata as a string map). Without
// "accepting", the states "suspended", "retiring" and "terminated" imply false and
// "active" implies true. Other keys are accepted and not stored.
func validateHeartbeatMetadata(raw json.RawMessage, maxBytes int) (*Lifecycle, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if len(raw) > maxBytes {
		return nil, invalid(mxp.CodeMetadataTooLarge, "heartbeat metadata is %d bytes; at most %d", len(raw), maxBytes)
	}
	var fields map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &fields) != nil {
		return nil, invalid(mxp.CodeInvalidMetadata, "heartbeat metadata must be a JSON object")
	}
	var lc Lifecycle
	for k, v := range fields {
		switch k {
		case "state":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, invalid(mxp.CodeInvalidMetadata, "heartbeat metadata.state must be a string")
			}
			s = strings.ToLower(s)
			if !validLifecycleName(s) {
				return nil, invalid(mxp.CodeInvalidMetadata, "heartbeat metadata.state %q must be 1-%d characters of [a-z0-9_-] starting with a letter", trunc(s), MaxLifecycleLen)
			}
			lc.State = s
		case "accepting":
			acc, ok := parseAccepting(v)
			if !ok {
				return nil, invalid(mxp.CodeInvalidMetadata, "heartbeat metadata.accepting must be true or false")
			}
			lc.Accepting = &acc
		default:
			if len(v) == 0 || v[0] == '{' || v[0] == '[' {
				return nil, invalid(mxp.CodeInvalidMetadata, "heartbeat metadata.%s must be a string, number, boolean or null", trunc(k))
			}
		}
	}
	if lc.Accepting == nil {
		switch lc.State {
		case LifecycleSuspended, LifecycleRetiring, LifecycleTerminated:
			lc.Accepting = boolPtr(false)
		case LifecycleActive:
			lc.Accepting = boolPtr(true)
		}
	}
	if !lc.Known() {
		return nil, nil
	}
	return &lc, nil
}

// parseAccepting reads a JSON boolean or the string "true" / "false" (any case).
func parseAccepting(v json.RawMessage) (bool, bool) {
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return b, true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func validLifecycleName(s string) bool {
	if len(s) == 0 || len(s) > MaxLifecycleLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// lifecycleEventType is the Type of the event published on bus.SubjectRegistryLifecycle.
const lifecycleEventType = "lifecycle"
