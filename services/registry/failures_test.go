package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func TestRecordState(t *testing.T) {
	hb := 10 * time.Second
	a := Agent{ID: agentID(1), LastHeartbeat: t0, ExpiresAt: t0.Add(30 * time.Second), Capabilities: []string{"b", "a"}}
	tests := []struct {
		at     time.Duration
		state  mxp.AgentState
		status mxp.AgentStatus
	}{
		{0, mxp.StateOnline, "Online"},
		{10 * time.Second, mxp.StateOnline, "Online"},
		{11 * time.Second, mxp.StateExpiring, "Degraded"},
		{29 * time.Second, mxp.StateExpiring, "Degraded"},
	}
	for _, tc := range tests {
		r := a.Record(t0.Add(tc.at), hb)
		if r.State != tc.state || r.Status != tc.status || !r.LastHeartbeat.Equal(t0) {
			t.Errorf("+%v: %s/%s, want %s/%s", tc.at, r.State, r.Status, tc.state, tc.status)
		}
	}
	if r := a.Record(t0, hb); r.Capabilities[0] != "a" || a.Capabilities[0] != "b" {
		t.Fatal("record must show sorted capabilities without touching the agent")
	}
}

// brokenStore fails every operation, as a Redis that went away would.
type brokenStore struct{ *MemoryStore }

var errDown = errors.New("connection refused")

func (brokenStore) Register(context.Context, Agent) (*Agent, error) { return nil, errDown }
func (brokenStore) Heartbeat(context.Context, string, time.Time, time.Time, *Lifecycle) (Lifecycle, error) {
	return Lifecycle{}, errDown
}
func (brokenStore) Deregister(context.Context, string) (Agent, error) { return Agent{}, errDown }
func (brokenStore) Discover(context.Context, Query, time.Time) ([]Agent, bool, error) {
	return nil, false, errDown
}
func (brokenStore) PopExpired(context.Context, time.Time, int) ([]Agent, error) { return nil, errDown }
func (brokenStore) Ping(context.Context) error                                  { return errDown }

// TestStoreFailure: a failing store gives callers a typed 503 without its internals,
// turns readiness false, and the registry keeps serving.
func TestStoreFailure(t *testing.T) {
	h := newHarness(t, testConfig(), brokenStore{NewMemoryStore()})
	for _, tc := range []struct {
		subject string
		body    any
	}{
		{bus.SubjectRegistryRegister, reg(1, "a", "x")},
		{bus.SubjectRegistryHeartbeat, mxp.HeartbeatRequest{AgentID: aid(1)}},
		{bus.SubjectRegistryDeregister, mxp.DeregisterRequest{AgentID: aid(1)}},
		{bus.SubjectRegistryDiscover, mxp.DiscoverRequest{}},
	} {
		err := h.call(t, tc.subject, tc.body, nil)
		var be *bus.Error
		if !errors.As(err, &be) || be.Code != mxp.CodeStoreUnavailable || be.Status() != 503 {
			t.Errorf("%s: %v", tc.subject, err)
		}
		if be != nil && (errors.Is(err, errDown) || strings.Contains(be.Message, "refused")) {
			t.Errorf("%s: store error leaked: %s", tc.subject, be.Message)
		}
	}
	rep := h.svc.deps.Health.Ready(context.Background())
	if rep.Ready {
		t.Fatal("readiness must be false while the store is down")
	}
}
