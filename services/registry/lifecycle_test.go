package registry

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func TestHeartbeatMetadata(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Lifecycle    // nil: reports nothing
		code mxp.ErrorCode // error code, if rejected
	}{
		{"absent", ``, nil, ""},
		{"null", `null`, nil, ""},
		{"empty object", `{}`, nil, ""},
		{"go sdk string map", `{"state":"suspended","accepting":"false"}`, suspended(), ""},
		{"booleans", `{"state":"active","accepting":true}`, active(), ""},
		{"state case folded", `{"state":"Suspended","accepting":"FALSE"}`, suspended(), ""},
		{"suspended implies not accepting", `{"state":"suspended"}`, suspended(), ""},
		{"retiring implies not accepting", `{"state":"retiring"}`, &Lifecycle{State: "retiring", Accepting: boolPtr(false)}, ""},
		{"active implies accepting", `{"state":"active"}`, active(), ""},
		{"other state stays unknown", `{"state":"ready"}`, &Lifecycle{State: "ready"}, ""},
		{"explicit accepting wins", `{"state":"suspended","accepting":true}`, &Lifecycle{State: "suspended", Accepting: boolPtr(true)}, ""},
		{"accepting alone", `{"accepting":false}`, &Lifecycle{Accepting: boolPtr(false)}, ""},
		{"unknown scalar keys ignored", `{"state":"active","load":0.5,"zone":"eu","x":null,"y":true}`, active(), ""},
		{"unknown keys only", `{"zone":"eu"}`, nil, ""},
		{"not an object", `["suspended"]`, nil, mxp.CodeInvalidMetadata},
		{"a string", `"suspended"`, nil, mxp.CodeInvalidMetadata},
		{"state not a string", `{"state":3}`, nil, mxp.CodeInvalidMetadata},
		{"state empty", `{"state":""}`, nil, mxp.CodeInvalidMetadata},
		{"state with space", `{"state":"on hold"}`, nil, mxp.CodeInvalidMetadata},
		{"state starts with digit", `{"state":"1st"}`, nil, mxp.CodeInvalidMetadata},
		{"state too long", `{"state":"` + strings.Repeat("a", MaxLifecycleLen+1) + `"}`, nil, mxp.CodeInvalidMetadata},
		{"accepting not boolean", `{"accepting":"maybe"}`, nil, mxp.CodeInvalidMetadata},
		{"accepting a number", `{"accepting":1}`, nil, mxp.CodeInvalidMetadata},
		{"nested value", `{"state":"active","extra":{"a":1}}`, nil, mxp.CodeInvalidMetadata},
		{"list value", `{"tags":["a"]}`, nil, mxp.CodeInvalidMetadata},
		{"too large", `{"note":"` + strings.Repeat("n", 200) + `"}`, nil, mxp.CodeMetadataTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := validateHeartbeatMetadata(json.RawMessage(tc.in), 128)
			if tc.code != "" {
				var be *bus.Error
				if !errors.As(err, &be) || be.Code != tc.code || be.Status() != tc.code.HTTPStatus() {
					t.Fatalf("err = %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && !got.Equal(*tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLifecycleChangedFrom(t *testing.T) {
	tests := []struct {
		name      string
		prev, now Lifecycle
		want      bool
	}{
		{"first report active", Lifecycle{}, *active(), false},
		{"first report suspended", Lifecycle{}, *suspended(), true},
		{"first report state only", Lifecycle{}, Lifecycle{State: "ready"}, false},
		{"same", *suspended(), *suspended(), false},
		{"suspended", *active(), *suspended(), true},
		{"resumed", *suspended(), *active(), true},
		{"state changed, acceptance not", Lifecycle{State: "ready"}, Lifecycle{State: "init"}, true},
		{"acceptance became known", Lifecycle{State: "active"}, *active(), true},
	}
	for _, tc := range tests {
		if got := tc.now.changedFrom(tc.prev); got != tc.want {
			t.Errorf("%s: changedFrom = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// heartbeatBody is a heartbeat as the Go SDK sends it: metadata as a string map.
func heartbeatBody(n int, state, accepting string) string {
	return `{"agent_id":"` + agentID(n) + `","metadata":{"state":"` + state + `","accepting":"` + accepting + `"}}`
}

// runLifecycleSuite runs heartbeat metadata end to end over the bus and the HTTP API
// against one kind of store.
func runLifecycleSuite(t *testing.T, newStore storeFactory) {
	h := newHarness(t, testConfig(), newStore(t))
	sub := h.subscribe(t)
	for i := 1; i <= 3; i++ {
		h.call(t, bus.SubjectRegistryRegister, reg(i, "worker", "review"), nil)
		if _, subj, ok := nextEvent(t, sub, 5*time.Second); !ok || subj != bus.SubjectRegistryRegistered {
			t.Fatalf("registered event for %d: %v %s", i, ok, subj)
		}
	}
	steps := []struct {
		name     string
		body     string
		event    bool   // a lifecycle event is expected
		previous string // its previous state
	}{
		{"plain heartbeat", `{"agent_id":"` + agentID(1) + `"}`, false, ""},
		{"first report active is assumed", heartbeatBody(1, "active", "true"), false, ""},
		{"suspend", heartbeatBody(2, "suspended", "false"), true, ""},
		{"still suspended", heartbeatBody(2, "suspended", "false"), false, ""},
		{"plain heartbeat keeps the report", `{"agent_id":"` + agentID(2) + `"}`, false, ""},
		{"agent 3 suspends", heartbeatBody(3, "suspended", "false"), true, ""},
		{"agent 3 resumes", heartbeatBody(3, "active", "true"), true, "suspended"},
	}
	for _, st := range steps {
		var hr mxp.HeartbeatResponse
		if err := h.call(t, bus.SubjectRegistryHeartbeat, st.body, &hr); err != nil || !hr.Success {
			t.Fatalf("%s: %+v %v", st.name, hr, err)
		}
		ev, subj, ok := nextEvent(t, sub, map[bool]time.Duration{true: 5 * time.Second, false: 100 * time.Millisecond}[st.event])
		if ok != st.event {
			t.Fatalf("%s: event %v (%s %+v), want %v", st.name, ok, subj, ev, st.event)
		}
		if !ok {
			continue
		}
		var hb struct {
			AgentID  string            `json:"agent_id"`
			Metadata map[string]string `json:"metadata"`
		}
		json.Unmarshal([]byte(st.body), &hb)
		prev := ""
		if ev.Previous != nil {
			prev = ev.Previous.State
		}
		if subj != bus.SubjectRegistryLifecycle || ev.Type != "lifecycle" || ev.Agent.ID.String() != hb.AgentID ||
			ev.Agent.Lifecycle != hb.Metadata["state"] || ev.Agent.Accepting == nil || prev != st.previous {
			t.Fatalf("%s: lifecycle event %s %+v (previous %+v)", st.name, subj, ev, ev.Previous)
		}
	}
	if got := testutil.ToFloat64(h.svc.events.WithLabelValues("lifecycle")); got != 3 {
		t.Errorf("lifecycle events counted %v, want 3", got)
	}

	// Discovery shows the lifecycle; accepting_only leaves agent 2 out.
	tests := []struct {
		name string
		req  mxp.DiscoverRequest
		want []string
	}{
		{"every agent", mxp.DiscoverRequest{Capability: "review"}, []string{agentID(1), agentID(2), agentID(3)}},
		{"accepting only", mxp.DiscoverRequest{Capability: "review", AcceptingOnly: true}, []string{agentID(1), agentID(3)}},
	}
	for _, tc := range tests {
		var dr mxp.DiscoverResponse
		if err := h.call(t, bus.SubjectRegistryDiscover, tc.req, &dr); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range dr.Agents {
			got = append(got, a.ID.String())
			if a.ID == aid(2) && (a.Lifecycle != "suspended" || a.Accepting == nil || *a.Accepting || a.State != mxp.StateOnline) {
				t.Fatalf("%s: suspended agent shown as %+v", tc.name, a)
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Fatalf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A raw reply carries the new fields only when known.
	msg, err := h.client.Request(bus.SubjectRegistryDiscover, []byte(`{"capability":"review"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Agents []map[string]any `json:"agents"`
	}
	json.Unmarshal(msg.Data, &raw)
	if len(raw.Agents) != 3 || raw.Agents[1]["lifecycle"] != "suspended" || raw.Agents[1]["accepting"] != false || raw.Agents[2]["accepting"] != true {
		t.Fatalf("discover reply %s", msg.Data)
	}

	// A new registration starts afresh: no lifecycle until the agent reports one.
	h.call(t, bus.SubjectRegistryRegister, reg(4, "fresh", "review"), nil)
	nextEvent(t, sub, 5*time.Second)

	srv := httptest.NewServer(h.router)
	defer srv.Close()
	for _, tc := range []struct {
		path     string
		code     int
		contains string
		not      string
	}{
		{"/v1/agents?capability=review", 200, `"count":4`, ""},
		{"/v1/agents?capability=review&accepting_only=true", 200, `"count":3`, agentID(2)},
		{"/v1/agents?accepting_only=1", 200, `"count":3`, agentID(2)},
		{"/v1/agents?accepting_only=false", 200, `"count":4`, ""},
		{"/v1/agents?accepting_only=sometimes", 400, `"code":"invalid_query"`, ""},
		{"/v1/agents/" + agentID(2), 200, `"lifecycle":"suspended","accepting":false`, ""},
		{"/v1/agents/" + agentID(4), 200, `"state":"online"`, `"lifecycle"`},
		{"/v1/agents/" + agentID(4), 200, `"state":"online"`, `"accepting"`},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.contains) || tc.not != "" && strings.Contains(string(body), tc.not) {
			t.Errorf("GET %s: %d %s", tc.path, resp.StatusCode, body)
		}
	}

	// Expiry and deregistration events carry the last report.
	var dr mxp.DeregisterResponse
	if err := h.call(t, bus.SubjectRegistryDeregister, heartbeatBody(2, "suspended", "false"), &dr); err != nil || !dr.Success {
		t.Fatalf("deregister with metadata: %+v %v", dr, err)
	}
	ev, subj, ok := nextEvent(t, sub, 5*time.Second)
	if !ok || subj != bus.SubjectRegistryDeregistered || ev.Agent.Lifecycle != "suspended" {
		t.Fatalf("deregistered event %v %s %+v", ok, subj, ev.Agent)
	}
}

func TestLifecycleMemory(t *testing.T) {
	runLifecycleSuite(t, func(t *testing.T) Store { return NewMemoryStore() })
}

func TestLifecycleRedis(t *testing.T) {
	runLifecycleSuite(t, func(t *testing.T) Store { return newRedisStore(t) })
}

// TestHeartbeatMetadataErrors: bad metadata is a typed error reply with a code, counted,
// and leaves the lease and the stored lifecycle alone.
func TestHeartbeatMetadataErrors(t *testing.T) {
	h := newHarness(t, testConfig(), NewMemoryStore())
	h.call(t, bus.SubjectRegistryRegister, reg(1, "a", "x"), nil)
	h.call(t, bus.SubjectRegistryHeartbeat, heartbeatBody(1, "suspended", "false"), nil)
	before, _ := h.svc.Store().Get(t.Context(), agentID(1), time.Now())
	id := agentID(1)
	tests := []struct {
		name, body string
		code       mxp.ErrorCode
	}{
		{"metadata a list", `{"agent_id":"` + id + `","metadata":[1]}`, mxp.CodeInvalidMetadata},
		{"metadata a number", `{"agent_id":"` + id + `","metadata":7}`, mxp.CodeInvalidMetadata},
		{"bad state", `{"agent_id":"` + id + `","metadata":{"state":"on hold"}}`, mxp.CodeInvalidMetadata},
		{"bad accepting", `{"agent_id":"` + id + `","metadata":{"accepting":"yes"}}`, mxp.CodeInvalidMetadata},
		{"nested value", `{"agent_id":"` + id + `","metadata":{"state":"active","x":{}}}`, mxp.CodeInvalidMetadata},
		{"too large", `{"agent_id":"` + id + `","metadata":{"note":"` + strings.Repeat("n", DefaultHeartbeatMetadataSize) + `"}}`, mxp.CodeMetadataTooLarge},
		{"bad id checked first", `{"agent_id":"x","metadata":{"state":"active"}}`, mxp.CodeInvalidAgentID},
	}
	for _, tc := range tests {
		err := h.call(t, bus.SubjectRegistryHeartbeat, tc.body, nil)
		var be *bus.Error
		if !errors.As(err, &be) || be.Code != tc.code || be.Status() != tc.code.HTTPStatus() || be.Message == "" {
			t.Errorf("%s: err = %v, want code %s", tc.name, err, tc.code)
		}
	}
	after, _ := h.svc.Store().Get(t.Context(), agentID(1), time.Now())
	if !after.LastHeartbeat.Equal(before.LastHeartbeat) || !after.Lifecycle.Equal(*suspended()) {
		t.Fatalf("a rejected heartbeat changed the record: %+v", after)
	}
	n, err := testutil.GatherAndCount(h.svc.deps.Metrics, "mxp_registry_requests_total")
	if err != nil || n == 0 {
		t.Fatalf("request metrics: %d %v", n, err)
	}
	mfs, _ := h.svc.deps.Metrics.Gather()
	var counted float64
	for _, mf := range mfs {
		if mf.GetName() != "mxp_registry_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == "heartbeat" && labels["code"] == string(mxp.CodeInvalidMetadata) {
				counted = m.GetCounter().GetValue()
			}
		}
	}
	if counted != 5 {
		t.Fatalf("invalid_metadata heartbeats counted %v, want 5", counted)
	}
}
