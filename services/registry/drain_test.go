package registry

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// blockingStore holds heartbeats until released, to catch shutdown with work in flight.
type blockingStore struct {
	*MemoryStore
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Heartbeat(ctx context.Context, id string, now, exp time.Time, lc *Lifecycle) (Lifecycle, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.MemoryStore.Heartbeat(ctx, id, now, exp, lc)
}

// TestShutdownDrainsInFlight: heartbeats being handled when Run is cancelled are answered
// before Run returns; nothing is lost.
func TestShutdownDrainsInFlight(t *testing.T) {
	st := &blockingStore{MemoryStore: NewMemoryStore(), entered: make(chan struct{}, 8), release: make(chan struct{})}
	h := newHarness(t, testConfig(), st)
	h.call(t, bus.SubjectRegistryRegister, reg(1, "a", "x"), nil)
	const n = 3
	replies := make(chan mxp.HeartbeatResponse, n)
	for range n {
		go func() {
			body, _ := json.Marshal(mxp.HeartbeatRequest{AgentID: aid(1)})
			msg, err := h.client.Request(bus.SubjectRegistryHeartbeat, body, 10*time.Second)
			var hr mxp.HeartbeatResponse
			if err == nil {
				json.Unmarshal(msg.Data, &hr)
			}
			replies <- hr
		}()
	}
	for range n {
		select {
		case <-st.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("heartbeats never reached the store")
		}
	}
	h.cancel()
	h.cancel = nil
	select {
	case <-h.done:
		t.Fatal("Run returned with heartbeats in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(st.release)
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	for range n {
		if hr := <-replies; !hr.Success {
			t.Fatalf("in-flight heartbeat lost or failed: %+v", hr)
		}
	}
}
