package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// TestRegisterConflictOverTheBus: a registration whose name is held by another owner
// (the Mxp-Owner header the edge sets) is answered 409 conflict, counted, and the holder's
// record is unchanged; a malformed owner header is a typed 400.
func TestRegisterConflictOverTheBus(t *testing.T) {
	h := newHarness(t, testConfig(), NewMemoryStore())
	victim := bus.OwnerKeyPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	other := bus.OwnerKeyPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	send := func(r mxp.RegisterRequest, owner string) error {
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
	if err := send(reg(9, "echo"), victim); err != nil {
		t.Fatal(err)
	}
	var be *bus.Error
	if err := send(reg(1, "echo"), ""); !errors.As(err, &be) || be.Code != mxp.CodeConflict {
		t.Fatalf("unowned registration of a held name: %v, want %s", err, mxp.CodeConflict)
	}
	if err := send(reg(2, "echo"), other); !errors.As(err, &be) || be.Code != mxp.CodeConflict {
		t.Fatalf("another key: %v, want %s", err, mxp.CodeConflict)
	}
	if err := send(reg(3, "echo"), "key:short"); !errors.As(err, &be) || be.Code != mxp.CodeInvalidArgument {
		t.Fatalf("malformed owner: %v, want %s", err, mxp.CodeInvalidArgument)
	}
	if n := testutil.ToFloat64(h.svc.conflicts); n != 2 {
		t.Fatalf("register_conflicts_total = %v, want 2", n)
	}
	var resp mxp.DiscoverResponse
	if err := h.call(t, bus.SubjectRegistryDiscover, mxp.DiscoverRequest{NamePrefix: "echo"}, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Agents) != 1 || resp.Agents[0].ID != aid(9) || resp.Agents[0].Owner != victim {
		t.Fatalf("discover: %+v", resp.Agents)
	}
}
