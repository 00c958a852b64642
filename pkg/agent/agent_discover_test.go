package agent

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// TestCallCapabilitySkipsNotAccepting: CallCapability asks the registry for accepting
// agents only and does not call an agent whose record says it is not accepting (even
// from a registry that ignores the filter) while another answers; when none does, it
// asks again without the filter and tries the rest (one may have resumed since its last
// heartbeat).
func TestCallCapabilitySkipsNotAccepting(t *testing.T) {
	a, err := New(Config{Name: "caller", HeartbeatInterval: time.Hour, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	agentEnd, edgeEnd := framePipe()
	edge := newFakeEdge(t, edgeEnd)
	go func() {
		for range edge.traces { // the Calls' trace ids are not under test here
		}
	}()
	done := make(chan error, 1)
	go func() { done <- a.RunConn(context.Background(), agentEnd) }()
	waitState(t, a, StateActive)
	t.Cleanup(func() {
		a.Retire()
		<-done
	})

	suspendedID, oldID := mxp.AgentID{0x5a, 1}, mxp.AgentID{0x01, 2}
	suspended := mxp.AgentRecord{ID: suspendedID, Name: "napping", Status: mxp.StatusOnline, Lifecycle: "suspended", Accepting: new(false)}
	echo := mxp.AgentRecord{ID: echoID, Name: "echo", Status: mxp.StatusOnline, Lifecycle: "active", Accepting: new(true)}
	old := mxp.AgentRecord{ID: oldID, Name: "reference-sdk", Status: mxp.StatusOnline} // reports no lifecycle; gone
	resumed := echo                                                                    // serves, though its last report said suspended
	resumed.Lifecycle, resumed.Accepting = "suspended", new(false)
	tests := []struct {
		name      string
		records   []mxp.AgentRecord
		noFilter  bool
		want      string
		code      Code
		called    []mxp.AgentID
		discovers int
	}{
		{"filtered by the registry", []mxp.AgentRecord{suspended, echo}, false, "echo:p", "", []mxp.AgentID{echoID}, 1},
		{"registry without the filter", []mxp.AgentRecord{suspended, echo}, true, "echo:p", "", []mxp.AgentID{echoID}, 1},
		{"records without lifecycle are tried", []mxp.AgentRecord{old, suspended, echo}, true, "echo:p", "", []mxp.AgentID{oldID, echoID}, 1},
		{"only suspended providers", []mxp.AgentRecord{suspended}, false, "", CodeUnavailable, []mxp.AgentID{suspendedID}, 2},
		{"resumed since its report", []mxp.AgentRecord{resumed, old}, false, "echo:p", "", []mxp.AgentID{oldID, echoID}, 2},
		{"no provider", nil, false, "", CodeNotFound, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edge.mu.Lock()
			edge.records, edge.noFilter, edge.discovers, edge.called = tt.records, tt.noFilter, nil, nil
			edge.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := a.CallCapability(ctx, "greet", []byte("p"))
			if string(out) != tt.want || CodeOf(err) != tt.code {
				t.Fatalf("CallCapability = %q, %v; want %q, code %q", out, err, tt.want, tt.code)
			}
			edge.mu.Lock()
			defer edge.mu.Unlock()
			if !slices.Equal(edge.called, tt.called) {
				t.Fatalf("called %v, want %v", edge.called, tt.called)
			}
			if len(edge.discovers) != tt.discovers || !edge.discovers[0].AcceptingOnly || edge.discovers[0].Required()[0] != "greet" ||
				tt.discovers == 2 && edge.discovers[1].AcceptingOnly {
				t.Fatalf("discovery requests %+v", edge.discovers)
			}
		})
	}
}

// TestSuspendReportedAtOnce: suspending and resuming heartbeat at once (the interval is
// an hour), so the registry stops offering the agent without waiting for the next beat.
func TestSuspendReportedAtOnce(t *testing.T) {
	a, err := New(Config{Name: "sleepy", HeartbeatInterval: time.Hour, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	agentEnd, edgeEnd := framePipe()
	edge := newFakeEdge(t, edgeEnd)
	done := make(chan error, 1)
	go func() { done <- a.RunConn(context.Background(), agentEnd) }()
	waitState(t, a, StateActive)
	waitBeat := func(state, accepting string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			edge.mu.Lock()
			ok := len(edge.beats) > 0 && edge.beats[len(edge.beats)-1].Metadata["state"] == state &&
				edge.beats[len(edge.beats)-1].Metadata["accepting"] == accepting
			edge.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no heartbeat reporting %s", state)
			}
			time.Sleep(time.Millisecond)
		}
	}
	steps := []struct {
		name             string
		do               func() error
		state, accepting string
	}{
		{"suspend", a.Suspend, "suspended", "false"},
		{"resume", a.Resume, "active", "true"},
		{"suspend again", a.Suspend, "suspended", "false"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		waitBeat(st.state, st.accepting)
	}
	a.Retire()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	edge.mu.Lock()
	defer edge.mu.Unlock()
	if len(edge.beats) > 5 || edge.finals != 1 {
		t.Fatalf("%d heartbeats, %d finals; want one per change (and retiring) and one final", len(edge.beats), edge.finals)
	}
}
