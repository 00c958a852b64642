package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
)

// FuzzRegisterPayload: any body yields a valid agent or a typed 400 error; a valid agent
// survives a JSON round trip unchanged (what the Redis store relies on).
func FuzzRegisterPayload(f *testing.F) {
	f.Add([]byte(`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"a","capabilities":["chat","chat"],"address":"127.0.0.1:1","metadata":{"version":"1","tags":"x,y","k":"v"}}`))
	f.Add([]byte(`{"id":"x"}`))
	f.Add([]byte(`{"metadata":{"tags":[1]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r RegisterRequest
		if err := decodeJSON(data, &r); err != nil {
			checkTyped(t, err)
			return
		}
		a, err := validateRegister(r, DefaultMetadataSize)
		if err != nil {
			checkTyped(t, err)
			return
		}
		var back Agent
		if err := json.Unmarshal(a.descriptor(), &back); err != nil {
			t.Fatalf("descriptor does not decode: %v", err)
		}
		if string(back.descriptor()) != string(a.descriptor()) {
			t.Fatalf("descriptor round trip changed:\n%s\n%s", a.descriptor(), back.descriptor())
		}
	})
}

// FuzzDiscoverPayload: any body yields a query within the limits or a typed error.
func FuzzDiscoverPayload(f *testing.F) {
	f.Add([]byte(`{"capability":"chat","capabilities":["a","b"],"name_prefix":"x","tag":"t","limit":5000,"after":"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}`))
	f.Add([]byte(`{"limit":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r DiscoverRequest
		if err := decodeJSON(data, &r); err != nil {
			checkTyped(t, err)
			return
		}
		q, err := validateDiscover(r, 100, 1000)
		if err != nil {
			checkTyped(t, err)
			return
		}
		if q.Limit < 1 || q.Limit > 1000 {
			t.Fatalf("limit %d escaped the bounds", q.Limit)
		}
		if _, _, err := NewMemoryStore().Discover(t.Context(), q, t0); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzHeartbeatPayload: any heartbeat body yields a lifecycle (or none) or a typed 400
// error; a reported lifecycle has a well-formed state, survives the Redis encoding, and
// applying it to a stored agent never fails.
func FuzzHeartbeatPayload(f *testing.F) {
	f.Add([]byte(`{"agent_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","metadata":{"state":"suspended","accepting":"false"}}`))
	f.Add([]byte(`{"agent_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","metadata":{"state":"Active","accepting":true,"load":1}}`))
	f.Add([]byte(`{"agent_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","metadata":[]}`))
	f.Add([]byte(`{"metadata":{"accepting":"maybe"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r HeartbeatRequest
		if err := decodeJSON(data, &r); err != nil {
			checkTyped(t, err)
			return
		}
		id, err := ValidAgentID(r.AgentID)
		if err != nil {
			checkTyped(t, err)
			return
		}
		lc, err := validateHeartbeatMetadata(r.Metadata, DefaultHeartbeatMetadataSize)
		if err != nil {
			checkTyped(t, err)
			return
		}
		if lc == nil {
			return
		}
		if !lc.Known() || lc.State != "" && !validLifecycleName(lc.State) {
			t.Fatalf("bad lifecycle %+v", lc)
		}
		if back := decodeLifecycle(encodeLifecycle(*lc)); !back.Equal(*lc) {
			t.Fatalf("redis encoding changed %+v to %+v", lc, back)
		}
		s := NewMemoryStore()
		s.Register(t.Context(), Agent{ID: id, ExpiresAt: t0.Add(time.Minute)})
		if _, err := s.Heartbeat(t.Context(), id, t0, t0.Add(time.Minute), lc); err != nil {
			t.Fatal(err)
		}
	})
}

func checkTyped(t *testing.T, err error) {
	t.Helper()
	var be *bus.Error
	if !errors.As(err, &be) || be.Status != 400 || be.Code == "" {
		t.Fatalf("untyped error %v", err)
	}
}

// FuzzOwnerHeader: any Mxp-Owner value is taken whole as an owner ("key:" and a 32-byte
// key in standard base64) or refused with a typed 400; absence means no owner.
func FuzzOwnerHeader(f *testing.F) {
	f.Add("")
	f.Add("key:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("key:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")
	f.Add("compat:127.0.0.1:1")
	f.Fuzz(func(t *testing.T, v string) {
		h := nats.Header{}
		if v != "" {
			h.Set(bus.HeaderOwner, v)
		}
		owner, err := validOwner(h)
		if err != nil {
			checkTyped(t, err)
			return
		}
		if owner != h.Get(bus.HeaderOwner) {
			t.Fatalf("owner %q from header %q", owner, v)
		}
		if owner != "" {
			key, _ := strings.CutPrefix(owner, bus.OwnerKeyPrefix)
			b, err := base64.StdEncoding.Strict().DecodeString(key)
			if err != nil || len(b) != 32 || base64.StdEncoding.EncodeToString(b) != key {
				t.Fatalf("accepted owner %q is not one canonical key", owner)
			}
		}
	})
}
