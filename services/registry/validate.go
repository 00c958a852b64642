package registry

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Limits of the registry's own (configurable) checks; every other limit is pkg/mxp's.
const (
	DefaultMetadataSize = mxp.MaxMetadataSize // max_metadata_bytes: at most mxp.MaxMetadataSize
)

func invalid(code mxp.ErrorCode, format string, args ...any) *bus.Error {
	return bus.Errorf(code, format, args...)
}

// payloadError is the reply to a body pkg/mxp's decoder refused: the code its check names
// (invalid_name, invalid_capability, ..., invalid_payload for malformed JSON), the same
// the edge sends for the same frame, and its message.
func payloadError(err error) *bus.Error {
	return &bus.Error{Code: mxp.ErrorCodeFor(err), Message: err.Error()}
}

// ValidAgentID checks and canonicalises an agent id (a UUID in any form pkg/mxp's
// ParseAgentID accepts, not the nil UUID; returned lower-case hyphenated).
func ValidAgentID(id string) (string, error) {
	if len(id) > 45 { // the longest form uuid.Parse accepts (urn:uuid: prefix)
		return "", invalid(mxp.CodeInvalidAgentID, "agent id is %d bytes; want a UUID", len(id))
	}
	u, err := mxp.ParseAgentID(id)
	if err != nil {
		return "", invalid(mxp.CodeInvalidAgentID, "agent id %q is not a UUID", id)
	}
	if u.IsZero() {
		return "", invalid(mxp.CodeInvalidAgentID, "agent id must not be the nil UUID")
	}
	return u.String(), nil
}

// validateRegister turns a registration that pkg/mxp's checks accepted into the agent to
// store (id canonical, capabilities sorted and de-duplicated, tags de-duplicated). Its only
// check of its own is the configured metadata bound, maxMetadata, when it is below
// mxp.MaxMetadataSize.
func validateRegister(r mxp.RegisterRequest, maxMetadata int) (Agent, error) {
	caps := slices.Compact(slices.Sorted(slices.Values(r.Capabilities)))
	md := r.Metadata
	if md.Tags != nil {
		md.Tags = slices.Compact(slices.Sorted(slices.Values(md.Tags)))
	}
	if maxMetadata < mxp.MaxMetadataSize {
		if b, _ := json.Marshal(md); len(b) > maxMetadata {
			return Agent{}, invalid(mxp.CodeMetadataTooLarge, "metadata is %d bytes; at most %d", len(b), maxMetadata)
		}
	}
	addr := ""
	if r.Address.IsValid() {
		addr = r.Address.String()
	}
	return Agent{ID: r.ID.String(), Name: r.Name, Capabilities: caps, Address: addr, Metadata: md,
		wireID: r.ID}, nil
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

// validateDiscover checks a discovery request with pkg/mxp's rules (DiscoverRequest.Validate)
// and applies the configured limits: 0 means defaultLimit, more than maxLimit is maxLimit.
func validateDiscover(r mxp.DiscoverRequest, defaultLimit, maxLimit int) (Query, error) {
	if err := r.Validate(); err != nil {
		return Query{}, payloadError(err)
	}
	switch {
	case r.Limit == 0:
		r.Limit = defaultLimit
	case r.Limit > maxLimit:
		r.Limit = maxLimit
	}
	if r.After != "" {
		id, _ := mxp.ParseAgentID(r.After) // Validate checked it
		r.After = id.String()
	}
	caps := r.Required() // a new slice without duplicates: sorted in place
	slices.Sort(caps)
	return Query{Capabilities: caps, Name: r.Name, NamePrefix: r.NamePrefix, Tag: r.Tag,
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
