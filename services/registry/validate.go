package registry

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Validation limits (the protocol's numbers, in one place).
const (
	MaxNameLen          = 96  // runes
	MaxCapabilityLen    = 64  // bytes of [a-z0-9._-]
	MaxCapabilities     = 64  // per agent
	MaxTagLen           = 64  // bytes
	MaxAddressLen       = 262 // a 253-byte host name, ':' and a port
	DefaultMetadataSize = 4096
)

func invalid(code mxp.ErrorCode, format string, args ...any) *bus.Error {
	return bus.Errorf(code, format, args...)
}

// decodeJSON decodes a request body strictly enough to name what is wrong.
func decodeJSON(data []byte, v any) error {
	if len(data) == 0 {
		return invalid(mxp.CodeInvalidPayload, "empty body; want a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return invalid(mxp.CodeInvalidPayload, "body is not valid JSON for this request: %v", err)
	}
	return nil
}

// ValidAgentID checks and canonicalises an agent id (a UUID, lower-case hyphenated form).
func ValidAgentID(id string) (string, error) {
	if len(id) > 45 { // the longest form uuid.Parse accepts (urn:uuid: prefix)
		return "", invalid(mxp.CodeInvalidAgentID, "agent id is %d bytes; want a UUID", len(id))
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", invalid(mxp.CodeInvalidAgentID, "agent id %q is not a UUID", id)
	}
	if u == uuid.Nil {
		return "", invalid(mxp.CodeInvalidAgentID, "agent id must not be the nil UUID")
	}
	return u.String(), nil
}

// ValidCapability checks one capability name.
func ValidCapability(c string) error {
	if len(c) == 0 || len(c) > MaxCapabilityLen {
		return invalid(mxp.CodeInvalidCapability, "capability %q must be 1-%d characters", trunc(c), MaxCapabilityLen)
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return invalid(mxp.CodeInvalidCapability, "capability %q: character %q not in [a-z0-9._-]", trunc(c), b)
		}
	}
	return nil
}

// validateRegister checks a registration and returns the agent to store (id
// canonicalised, capabilities sorted and de-duplicated, tags de-duplicated).
func validateRegister(r RegisterRequest, maxMetadata int) (Agent, error) {
	id, err := ValidAgentID(r.ID)
	if err != nil {
		return Agent{}, err
	}
	if n := utf8.RuneCountInString(r.Name); n == 0 || n > MaxNameLen || !utf8.ValidString(r.Name) {
		return Agent{}, invalid(mxp.CodeInvalidName, "name must be 1-%d characters of valid UTF-8, got %d", MaxNameLen, n)
	}
	if strings.IndexFunc(r.Name, unicode.IsControl) >= 0 {
		return Agent{}, invalid(mxp.CodeInvalidName, "name must not contain control characters")
	}
	if len(r.Capabilities) > MaxCapabilities {
		return Agent{}, invalid(mxp.CodeTooManyCapabilities, "%d capabilities; at most %d per agent", len(r.Capabilities), MaxCapabilities)
	}
	for _, c := range r.Capabilities {
		if err := ValidCapability(c); err != nil {
			return Agent{}, err
		}
	}
	caps := slices.Compact(slices.Sorted(slices.Values(r.Capabilities)))
	if err := validAddress(r.Address); err != nil {
		return Agent{}, err
	}
	md := r.Metadata
	for _, t := range md.Tags {
		if len(t) == 0 || len(t) > MaxTagLen || strings.IndexFunc(t, unicode.IsControl) >= 0 || !utf8.ValidString(t) {
			return Agent{}, invalid(mxp.CodeInvalidMetadata, "tag %q must be 1-%d printable characters", trunc(t), MaxTagLen)
		}
	}
	if md.Tags != nil {
		md.Tags = slices.Compact(slices.Sorted(slices.Values(md.Tags)))
	}
	for k, v := range md.Extra {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return Agent{}, invalid(mxp.CodeInvalidMetadata, "metadata must be valid UTF-8")
		}
	}
	b, _ := json.Marshal(md)
	if len(b) > maxMetadata {
		return Agent{}, bus.Errorf(mxp.CodeMetadataTooLarge, "metadata is %d bytes; at most %d", len(b), maxMetadata)
	}
	return Agent{ID: id, Name: r.Name, Capabilities: caps, Address: r.Address, Metadata: md}, nil
}

// validAddress accepts host:port where host is an IP address or a DNS name, or "" for an
// agent that is reached only through its edge connection (docs/protocol.md).
func validAddress(a string) error {
	if a == "" {
		return nil
	}
	if len(a) > MaxAddressLen {
		return invalid(mxp.CodeInvalidAddress, "address must be host:port, at most %d bytes", MaxAddressLen)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return invalid(mxp.CodeInvalidAddress, "address %q is not host:port", trunc(a))
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return invalid(mxp.CodeInvalidAddress, "address %q: port must be 1-65535", trunc(a))
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if !validHostname(host) {
		return invalid(mxp.CodeInvalidAddress, "address %q: host is neither an IP address nor a DNS name", trunc(a))
	}
	return nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return true
}

// Query is a validated discovery query.
type Query struct {
	Capabilities []string // all required, sorted
	Name         string   // the exact name ("" any)
	NamePrefix   string
	Tag          string
	// AcceptingOnly leaves out agents that reported they take no new calls.
	AcceptingOnly bool
	Limit         int
	After         string // exclusive lower bound on agent id
}

// validateDiscover checks a discovery request against the configured limits.
func validateDiscover(r DiscoverRequest, defaultLimit, maxLimit int) (Query, error) {
	caps := slices.Clone(r.Capabilities)
	if r.Capability != "" {
		caps = append(caps, r.Capability)
	}
	if len(caps) > MaxCapabilities {
		return Query{}, invalid(mxp.CodeInvalidQuery, "%d capabilities in the query; at most %d", len(caps), MaxCapabilities)
	}
	for _, c := range caps {
		if err := ValidCapability(c); err != nil {
			return Query{}, err
		}
	}
	if utf8.RuneCountInString(r.Name) > MaxNameLen {
		return Query{}, invalid(mxp.CodeInvalidQuery, "name longer than %d characters", MaxNameLen)
	}
	if utf8.RuneCountInString(r.NamePrefix) > MaxNameLen {
		return Query{}, invalid(mxp.CodeInvalidQuery, "name_prefix longer than %d characters", MaxNameLen)
	}
	if len(r.Tag) > MaxTagLen {
		return Query{}, invalid(mxp.CodeInvalidQuery, "tag longer than %d characters", MaxTagLen)
	}
	switch {
	case r.Limit < 0:
		return Query{}, invalid(mxp.CodeInvalidQuery, "limit must be >= 0, got %d", r.Limit)
	case r.Limit == 0:
		r.Limit = defaultLimit
	case r.Limit > maxLimit:
		r.Limit = maxLimit
	}
	if r.After != "" {
		id, err := ValidAgentID(r.After)
		if err != nil {
			return Query{}, invalid(mxp.CodeInvalidQuery, "after must be an agent id")
		}
		r.After = id
	}
	return Query{Capabilities: slices.Compact(slices.Sorted(slices.Values(caps))), Name: r.Name, NamePrefix: r.NamePrefix, Tag: r.Tag,
		AcceptingOnly: r.AcceptingOnly, Limit: r.Limit, After: r.After}, nil
}

// validOwner reads the owner of a registration from its bus.HeaderOwner: "" when absent,
// else "key:" and the standard base64 of a 32-byte public key, returned as is.
func validOwner(h nats.Header) (string, error) {
	v := bus.Owner(h)
	if v == "" {
		return "", nil
	}
	key, ok := strings.CutPrefix(v, bus.OwnerKeyPrefix)
	if !ok || len(key) != base64.StdEncoding.EncodedLen(32) {
		return "", invalid(mxp.CodeInvalidArgument, "header %s: %q is not %s<base64 public key>", bus.HeaderOwner, trunc(v), bus.OwnerKeyPrefix)
	}
	if b, err := base64.StdEncoding.Strict().DecodeString(key); err != nil || len(b) != 32 {
		return "", invalid(mxp.CodeInvalidArgument, "header %s: %q is not %s<base64 public key>", bus.HeaderOwner, trunc(v), bus.OwnerKeyPrefix)
	}
	return v, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
