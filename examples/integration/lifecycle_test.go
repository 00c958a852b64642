package integration

import (
	"context"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// TestDiscoverySkipsSuspendedAgents: a suspended agent's heartbeat tells the registry
// (through the edge) at once; discovery shows its lifecycle, accepting_only leaves it out,
// and CallCapability never calls it (its handler refuses nothing).
func TestDiscoverySkipsSuspendedAgents(t *testing.T) {
	m := startMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	providers := map[string]*agent.Agent{}
	for _, name := range []string{"one", "two"} {
		a := newAgent(t, m, name, "greet")
		a.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) { return []byte(name), nil })
		runAgent(t, m, a)
		providers[name] = a
	}
	client := newAgent(t, m, "client")
	runAgent(t, m, client)

	napping := providers["one"]
	if err := napping.Suspend(); err != nil {
		t.Fatal(err)
	}
	// The suspension is reported by an immediate heartbeat, not the next one (1s).
	var rec mxp.AgentRecord
	for deadline := time.Now().Add(10 * time.Second); ; {
		recs, err := client.Discover(ctx, mxp.DiscoverRequest{Capability: "greet"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.ID.String() == napping.ID() {
				rec = r
			}
		}
		if rec.Lifecycle == "suspended" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry never showed the suspension: %+v", rec)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rec.Accepting == nil || *rec.Accepting || rec.Status != mxp.StatusOnline {
		t.Fatalf("suspended agent's record %+v", rec)
	}

	tests := []struct {
		name string
		req  mxp.DiscoverRequest
		want []string
	}{
		{"every provider", mxp.DiscoverRequest{Capability: "greet"}, []string{"one", "two"}},
		{"accepting only", mxp.DiscoverRequest{Capability: "greet", AcceptingOnly: true}, []string{"two"}},
	}
	for _, tt := range tests {
		recs, err := client.Discover(ctx, tt.req)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range recs {
			got[r.Name] = true
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: %v, want %v", tt.name, got, tt.want)
		}
		for _, w := range tt.want {
			if !got[w] {
				t.Fatalf("%s: %v, want %v", tt.name, got, tt.want)
			}
		}
	}
	for range 5 {
		if out, err := client.CallCapability(ctx, "greet", nil); err != nil || string(out) != "two" {
			t.Fatalf("CallCapability = %q, %v; want two", out, err)
		}
	}
	if st := napping.Stats().Handlers; st.Refused != 0 {
		t.Fatalf("the suspended agent was called %d times; discovery should have skipped it", st.Refused)
	}

	// Resumed, it is offered again.
	if err := napping.Resume(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		recs, err := client.Discover(ctx, mxp.DiscoverRequest{Capability: "greet", AcceptingOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		offered := false
		for _, r := range recs {
			offered = offered || r.ID.String() == napping.ID() && r.Lifecycle == "active"
		}
		if offered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resumed agent not offered again: %+v", recs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
