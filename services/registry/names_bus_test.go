package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// owners returns two distinct Mxp-Owner header values.
func owners() (victim, other string) {
	return bus.OwnerKeyPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		bus.OwnerKeyPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
}

// registerAs sends a registration with an Mxp-Owner header ("" for none).
func (h *harness) registerAs(t *testing.T, r mxp.RegisterRequest, owner string) error {
	t.Helper()
	body, _ := json.Marshal(r)
	msg := &nats.Msg{Subject: bus.SubjectRegistryRegister, Header: nats.Header{}, Data: body}
	if owner != "" {
		msg.Header.Set(bus.HeaderOwner, owner)
	}
	reply, err := h.client.RequestMsg(msg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return bus.ReplyError(reply)
}

// TestNameSquatAfterDeregisterRefused is the squat of review finding 2: the owner's agent
// is deregistered (killed; dead-peer detection), another key and a plaintext peer try the
// name at once and get conflict; the owner's restart takes it back.
func TestNameSquatAfterDeregisterRefused(t *testing.T) {
	cfg := testConfig() // name_claim_grace unset: the lease
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, cfg, st)
	victim, other := owners()
	if err := h.registerAs(t, reg(9, "echo"), victim); err != nil {
		t.Fatal(err)
	}
	if err := h.call(t, bus.SubjectRegistryDeregister, mxp.DeregisterRequest{AgentID: aid(9)}, nil); err != nil {
		t.Fatal(err)
	}
	var be *bus.Error
	for _, owner := range []string{other, ""} {
		if err := h.registerAs(t, reg(1, "echo"), owner); !errors.As(err, &be) || be.Code != mxp.CodeConflict {
			t.Fatalf("owner %q squatted a name just deregistered: %v, want %s", owner, err, mxp.CodeConflict)
		}
	}
	if err := h.registerAs(t, reg(10, "echo"), victim); err != nil {
		t.Fatalf("the owner's restart: %v", err)
	}
}

// TestDiscoverExactNameOverTheBus is the lookup of review finding 1: agents whose names
// start with "echo" and whose ids sort first fill a whole page; the name filter still
// returns the agent named "echo".
func TestDiscoverExactNameOverTheBus(t *testing.T) {
	cfg := testConfig()
	h := newHarness(t, cfg, NewMemoryStore())
	victim, other := owners()
	st := h.svc.Store()
	now := time.Now()
	for i := 1; i <= cfg.DiscoverMaxLimit+1; i++ { // straight into the store: no rate limits
		a, err := validateRegister(reg(i, fmt.Sprintf("echo%d", i)), cfg.MaxMetadataBytes)
		if err != nil {
			t.Fatal(err)
		}
		a.Owner, a.RegisteredAt, a.LastHeartbeat, a.ExpiresAt = other, now, now, now.Add(time.Hour)
		if _, err := st.Register(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.registerAs(t, reg(1<<20, "echo"), victim); err != nil {
		t.Fatal(err)
	}
	var resp mxp.DiscoverResponse
	if err := h.call(t, bus.SubjectRegistryDiscover, json.RawMessage(fmt.Sprintf(`{"name":"echo","limit":%d}`, cfg.DiscoverMaxLimit)), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Agents) != 1 || resp.Agents[0].ID != aid(1<<20) || resp.Agents[0].Owner != victim {
		t.Fatalf("discover by name: %d agents, first %+v", len(resp.Agents), resp.Agents[0])
	}
}
