package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatsAndCollector(t *testing.T) {
	a := newTestAgent(t)
	if st := a.Stats(); st.State != StateInit || st.Registrations != 0 {
		t.Fatalf("before Run: %+v", st)
	}
	a.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) { return p, nil })
	conn := newMemConn()
	done := make(chan error, 1)
	go func() { done <- a.serve(context.Background(), conn) }()
	waitState(t, a, StateActive)
	conn.in <- call(1, "a")
	conn.out.next(t)
	if err := a.Suspend(); err != nil {
		t.Fatal(err)
	}
	conn.in <- call(2, "b")
	conn.out.next(t)

	st := a.Stats()
	if !st.Registered || st.Registrations != 1 || st.Handlers.Completed != 1 || st.Handlers.Refused != 1 || st.State != StateSuspended {
		t.Fatalf("stats = %+v", st)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(a.Collector()); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP mxp_agent_dispatch_queued Accepted messages waiting for a handler worker now (the dispatcher queue's depth; at most Config.QueueSize).
# TYPE mxp_agent_dispatch_queued gauge
mxp_agent_dispatch_queued{agent="tester",agent_id="ID"} 0
# HELP mxp_agent_messages_total Inbound messages by outcome.
# TYPE mxp_agent_messages_total counter
mxp_agent_messages_total{agent="tester",agent_id="ID",outcome="completed"} 1
mxp_agent_messages_total{agent="tester",agent_id="ID",outcome="failed"} 0
mxp_agent_messages_total{agent="tester",agent_id="ID",outcome="overloaded"} 0
mxp_agent_messages_total{agent="tester",agent_id="ID",outcome="panicked"} 0
mxp_agent_messages_total{agent="tester",agent_id="ID",outcome="refused"} 1
mxp_agent_messages_total{agent="tester",agent_id="ID",outcome="stray_error"} 0
# HELP mxp_agent_state Lifecycle state: 0 init, 1 ready, 2 active, 3 suspended, 4 retiring, 5 terminated.
# TYPE mxp_agent_state gauge
mxp_agent_state{agent="tester",agent_id="ID"} 3
`
	want = strings.ReplaceAll(want, "ID", a.ID())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mxp_agent_dispatch_queued", "mxp_agent_messages_total", "mxp_agent_state"); err != nil {
		t.Fatal(err)
	}
	a.Retire()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
