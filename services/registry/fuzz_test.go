package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// FuzzRegisterPayload: any body yields a valid agent or a typed 4xx error; a valid agent
// survives a JSON round trip unchanged (what the Redis store relies on).
func FuzzRegisterPayload(f *testing.F) {
	f.Add([]byte(`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"a","capabilities":["chat","chat"],"address":"127.0.0.1:1","metadata":{"version":"1","tags":"x,y","k":"v"}}`))
	f.Add([]byte(`{"id":"x"}`))
	f.Add([]byte(`{"metadata":{"tags":[1]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := mxp.DecodeRegisterRequest(data)
		if err != nil {
			checkTyped(t, payloadError(err))
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
	f.Add([]byte(`{"name":"echo","capability":"chat","limit":1000}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := mxp.DecodeDiscoverRequest(data)
		if err != nil {
			checkTyped(t, payloadError(err))
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
		r, err := mxp.DecodeHeartbeatRequest(data)
		if err != nil {
			checkTyped(t, payloadError(err))
			return
		}
		id := r.AgentID.String()
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
	if !errors.As(err, &be) || be.Status()/100 != 4 || be.Code == "" {
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

// FuzzNameClaims runs random sequences of registrations, heartbeats, deregistrations and
// expiry collections (8 ids, 3 names, 3 owners, a grace of 0 or 20 s) against the memory
// store and a direct model of the claim rules (store.go, Register's contract): every
// outcome must agree, and discovery by exact name must list exactly the live agents of
// that name. It exercises the claim bookkeeping (positions, the vacant heap) that the
// O(1) check relies on.
func FuzzNameClaims(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 2, 1, 0, 0, 0, 2, 0, 2, 3, 0, 0, 0})
	f.Add([]byte{0, 1, 1, 1, 0, 2, 1, 1, 1, 1, 0, 0, 0, 2, 1, 2, 3, 0, 0, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 || len(ops) > 4*256 {
			return
		}
		grace := time.Duration(ops[0]%2) * 20 * time.Second
		s := NewMemoryStoreWith(MemoryOptions{NameClaimGrace: grace})
		type magent struct {
			name, owner string
			exp         time.Time
		}
		type mclaim struct {
			owner string
			end   time.Time // latest lease end
		}
		agents := map[string]*magent{}
		claims := map[string]*mclaim{}
		names := []string{"echo", "echo2", "x"}
		ownerKeys := []string{"", "key:A", "key:B"}
		vacate := func(name string) {
			for _, a := range agents {
				if a.name == name {
					return
				}
			}
			if grace == 0 {
				delete(claims, name)
			}
		}
		ctx := context.Background()
		now := t0
		for i := 1; i+3 < len(ops); i += 4 {
			op, n, name, owner := ops[i]%4, int(ops[i+1]%8)+1, names[int(ops[i+2])%3], ownerKeys[int(ops[i+3])%3]
			now = now.Add(time.Duration(ops[i+3]/3%16) * time.Second)
			id := agentID(n)
			switch op {
			case 0: // register
				a := testAgent(n, name, nil)
				a.Owner, a.RegisteredAt, a.LastHeartbeat, a.ExpiresAt = owner, now, now, now.Add(30*time.Second)
				want := ""
				if m := agents[id]; m != nil && m.exp.After(now) && m.owner != owner {
					want = "id"
				} else if c := claims[name]; c != nil && c.owner != owner && c.end.Add(grace).After(now) {
					want = "name"
				}
				_, err := s.Register(ctx, a)
				var held *NameHeldError
				got := ""
				if errors.As(err, &held) {
					got = map[bool]string{true: "id", false: "name"}[held.ByID]
				} else if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("op %d: register %s %q by %q: got %q, want %q", i/4, id, name, owner, got, want)
				}
				if got != "" {
					continue
				}
				old := agents[id]
				agents[id] = &magent{name: name, owner: owner, exp: a.ExpiresAt}
				if old != nil && old.name != name {
					vacate(old.name)
				}
				if c := claims[name]; c == nil || c.owner != owner {
					claims[name] = &mclaim{owner: owner, end: a.ExpiresAt}
				} else if a.ExpiresAt.After(c.end) {
					c.end = a.ExpiresAt
				}
			case 1: // deregister
				_, err := s.Deregister(ctx, id)
				m := agents[id]
				if (m == nil) != errors.Is(err, ErrNotFound) {
					t.Fatalf("op %d: deregister %s: %v, model has %v", i/4, id, err, m)
				}
				if m != nil {
					delete(agents, id)
					vacate(m.name)
				}
			case 2: // heartbeat
				exp := now.Add(30 * time.Second)
				_, err := s.Heartbeat(ctx, id, now, exp, nil)
				m := agents[id]
				live := m != nil && m.exp.After(now)
				if live != (err == nil) {
					t.Fatalf("op %d: heartbeat %s: %v, model live=%v", i/4, id, err, live)
				}
				if live {
					m.exp = exp
					if c := claims[m.name]; c != nil && c.owner == m.owner && exp.After(c.end) {
						c.end = exp
					}
				}
			case 3: // collect expired
				popped, err := s.PopExpired(ctx, now, 100)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range popped {
					m := agents[p.ID]
					if m == nil || m.exp.After(now) {
						t.Fatalf("op %d: popped %s, model %v", i/4, p.ID, m)
					}
					delete(agents, p.ID)
					vacate(m.name)
				}
			}
			for _, nm := range names {
				as, _, err := s.Discover(ctx, Query{Name: nm, Limit: 100}, now)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for id, m := range agents {
					if m.name == nm && m.exp.After(now) {
						want = append(want, id)
					}
				}
				slices.Sort(want)
				if got := ids(as); !slices.Equal(got, want) {
					t.Fatalf("op %d: discover name %q: %v, want %v", i/4, nm, got, want)
				}
			}
		}
	})
}
