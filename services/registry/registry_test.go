package registry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

var quiet = slog.New(slog.DiscardHandler)

// harness is a registry on an in-process bus.
type harness struct {
	bus    *bus.Bus
	client *nats.Conn
	svc    *Service
	router chi.Router
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, cfg Config, st Store) *harness {
	t.Helper()
	b, err := bus.Start(bus.Config{Embedded: bus.EmbeddedConfig{DontListen: true}}, "client", quiet)
	if err != nil {
		t.Fatal(err)
	}
	return addReplica(t, b, cfg, st)
}

// addReplica runs one more registry on b's bus.
func addReplica(t *testing.T, b *bus.Bus, cfg Config, st Store) *harness {
	t.Helper()
	nc, err := b.NewConn("registry")
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	svc, err := NewWithStore(cfg, service.Deps{Conn: nc, Logger: quiet, Router: r}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{bus: b, client: b.Conn, svc: svc, router: r, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- svc.Run(ctx) }()
	select {
	case <-svc.Serving():
	case err := <-h.done:
		h.done <- err
		t.Fatalf("registry Run ended before serving: %v", err)
	}
	t.Cleanup(func() {
		h.stop(t)
		nc.Close()
		if b.Server != nil && b.Server.NumClients() <= 1 {
			b.Close()
		}
	})
	return h
}

func (h *harness) stop(t *testing.T) {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func (h *harness) call(t *testing.T, subject string, req any, resp any) error {
	t.Helper()
	var data []byte
	switch v := req.(type) {
	case []byte:
		data = v
	case string:
		data = []byte(v)
	default:
		data, _ = json.Marshal(v)
	}
	msg, err := h.client.Request(subject, data, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := bus.ReplyError(msg); err != nil {
		return err
	}
	if resp != nil {
		if err := json.Unmarshal(msg.Data, resp); err != nil {
			t.Fatalf("%s: bad reply %s: %v", subject, msg.Data, err)
		}
	}
	return nil
}

func (h *harness) subscribe(t *testing.T) *nats.Subscription {
	t.Helper()
	sub, err := h.client.SubscribeSync(bus.SubjectRegistryEvents)
	if err != nil {
		t.Fatal(err)
	}
	h.client.Flush()
	return sub
}

func nextEvent(t *testing.T, sub *nats.Subscription, wait time.Duration) (Event, string, bool) {
	t.Helper()
	m, err := sub.NextMsg(wait)
	if errors.Is(err, nats.ErrTimeout) {
		return Event{}, "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev, m.Subject, true
}

func reg(n int, name string, caps ...string) mxp.RegisterRequest {
	return mxp.RegisterRequest{ID: aid(n), Name: name, Capabilities: caps, Address: netip.MustParseAddrPort("127.0.0.1:7001"),
		Metadata: mxp.AgentMetadata{Version: "1.2.3", Description: "test agent", Tags: []string{"t1"}}}
}

func testConfig() Config {
	c := DefaultConfig()
	c.HTTP = ""
	c.ExpiryInterval = 20 * time.Millisecond
	return c
}

// runServiceSuite runs the registry end to end over the bus against one kind of store.
func runServiceSuite(t *testing.T, newStore storeFactory) {
	t.Run("register, update, events", func(t *testing.T) {
		h := newHarness(t, testConfig(), newStore(t))
		sub := h.subscribe(t)
		var rr mxp.RegisterResponse
		if err := h.call(t, bus.SubjectRegistryRegister, reg(1, "alpha", "chat"), &rr); err != nil {
			t.Fatal(err)
		}
		if !rr.Success || rr.AgentID != aid(1) || rr.Message != "registered" || rr.LeaseSeconds != 30 {
			t.Fatalf("register reply %+v", rr)
		}
		ev, subj, ok := nextEvent(t, sub, 5*time.Second)
		if !ok || subj != bus.SubjectRegistryRegistered || ev.Agent.Name != "alpha" || ev.Agent.State != mxp.StateOnline {
			t.Fatalf("registered event %v %s %+v", ok, subj, ev)
		}
		// The same registration again updates silently.
		h.call(t, bus.SubjectRegistryRegister, reg(1, "alpha", "chat"), &rr)
		if rr.Message != "updated" {
			t.Fatalf("second register: %+v", rr)
		}
		if _, _, ok := nextEvent(t, sub, 100*time.Millisecond); ok {
			t.Fatal("unchanged re-registration must not publish an event")
		}
		// A changed one publishes.
		h.call(t, bus.SubjectRegistryRegister, reg(1, "alpha", "chat", "vision"), &rr)
		if ev, _, ok := nextEvent(t, sub, 5*time.Second); !ok || len(ev.Agent.Capabilities) != 2 {
			t.Fatalf("changed registration event %+v", ev)
		}
	})

	t.Run("heartbeat and needs_register", func(t *testing.T) {
		h := newHarness(t, testConfig(), newStore(t))
		var hr mxp.HeartbeatResponse
		if err := h.call(t, bus.SubjectRegistryHeartbeat, mxp.HeartbeatRequest{AgentID: aid(9)}, &hr); err != nil {
			t.Fatal(err)
		}
		if hr.Success || !hr.NeedsRegister || hr.AgentID != aid(9) || hr.Timestamp.IsZero() {
			t.Fatalf("unknown heartbeat %+v", hr)
		}
		h.call(t, bus.SubjectRegistryRegister, reg(9, "nine", "x"), nil)
		if err := h.call(t, bus.SubjectRegistryHeartbeat, `{"agent_id":"`+strings.ToUpper(agentID(9))+`"}`, &hr); err != nil {
			t.Fatal(err)
		}
		if !hr.Success || hr.NeedsRegister {
			t.Fatalf("known heartbeat %+v", hr)
		}
	})

	t.Run("expired event within a second of lease end", func(t *testing.T) {
		cfg := testConfig()
		cfg.Lease, cfg.HeartbeatInterval = time.Second, 300*time.Millisecond
		h := newHarness(t, cfg, newStore(t))
		sub := h.subscribe(t)
		start := time.Now().Truncate(time.Millisecond)
		h.call(t, bus.SubjectRegistryRegister, reg(5, "shortlived", "x"), nil)
		nextEvent(t, sub, 5*time.Second) // registered
		ev, subj, ok := nextEvent(t, sub, 5*time.Second)
		got := time.Now()
		if !ok || subj != bus.SubjectRegistryExpired || ev.Agent.ID != aid(5) {
			t.Fatalf("expired event: ok=%v %s %+v", ok, subj, ev)
		}
		leaseEnd := ev.Agent.LeaseExpiresAt
		if leaseEnd.Before(start.Add(cfg.Lease)) || got.Sub(leaseEnd) >= time.Second || ev.LagSeconds >= 1 {
			t.Fatalf("expired %v after lease end (lag field %.3fs)", got.Sub(leaseEnd), ev.LagSeconds)
		}
		var hr mxp.HeartbeatResponse
		h.call(t, bus.SubjectRegistryHeartbeat, mxp.HeartbeatRequest{AgentID: aid(5)}, &hr)
		if !hr.NeedsRegister {
			t.Fatal("expired agent must be told to register")
		}
	})

	t.Run("deregister", func(t *testing.T) {
		h := newHarness(t, testConfig(), newStore(t))
		sub := h.subscribe(t)
		h.call(t, bus.SubjectRegistryRegister, reg(3, "three", "x"), nil)
		nextEvent(t, sub, 5*time.Second)
		var dr mxp.DeregisterResponse
		if err := h.call(t, bus.SubjectRegistryDeregister, mxp.DeregisterRequest{AgentID: aid(3)}, &dr); err != nil || !dr.Success {
			t.Fatalf("deregister %+v %v", dr, err)
		}
		if _, subj, ok := nextEvent(t, sub, 5*time.Second); !ok || subj != bus.SubjectRegistryDeregistered {
			t.Fatalf("deregistered event %v %s", ok, subj)
		}
		var be *bus.Error
		if err := h.call(t, bus.SubjectRegistryDeregister, mxp.DeregisterRequest{AgentID: aid(3)}, nil); !errors.As(err, &be) || be.Code != mxp.CodeNotFound || be.Status() != 404 {
			t.Fatalf("second deregister: %v", err)
		}
	})

	t.Run("discover over the bus and HTTP", func(t *testing.T) {
		h := newHarness(t, testConfig(), newStore(t))
		for i := 1; i <= 12; i++ {
			caps := []string{"chat"}
			if i%3 == 0 {
				caps = append(caps, "vision")
			}
			h.call(t, bus.SubjectRegistryRegister, reg(i, "agent", caps...), nil)
		}
		var dr mxp.DiscoverResponse
		if err := h.call(t, bus.SubjectRegistryDiscover, mxp.DiscoverRequest{Capability: "chat", Capabilities: []string{"vision"}}, &dr); err != nil {
			t.Fatal(err)
		}
		if dr.Count != 4 || dr.Agents[0].ID != aid(3) || dr.Agents[0].Version != "1.2.3" || dr.Agents[0].Status != "Online" {
			t.Fatalf("discover: %+v", dr)
		}
		h.call(t, bus.SubjectRegistryDiscover, mxp.DiscoverRequest{Capability: "chat", Limit: 5}, &dr)
		if dr.Count != 5 || dr.NextAfter != agentID(5) {
			t.Fatalf("page 1: count %d next %s", dr.Count, dr.NextAfter)
		}
		h.call(t, bus.SubjectRegistryDiscover, mxp.DiscoverRequest{Capability: "chat", Limit: 5, After: dr.NextAfter}, &dr)
		if dr.Count != 5 || dr.Agents[0].ID != aid(6) {
			t.Fatalf("page 2: %+v", dr)
		}
		if err := h.call(t, bus.SubjectRegistryDiscover, "", &dr); err != nil || dr.Count != 12 {
			t.Fatalf("empty discover: %d %v", dr.Count, err)
		}

		srv := httptest.NewServer(h.router)
		defer srv.Close()
		for _, tc := range []struct {
			path     string
			code     int
			contains string
		}{
			{"/v1/agents?capability=vision", 200, `"count":4`},
			{"/v1/agents?capability=chat,vision&limit=2", 200, `"next_after":"` + agentID(6)},
			{"/v1/agents?capability=a%01b", 400, `"code":"invalid_capability"`},
			{"/v1/agents?limit=x", 400, `"code":"invalid_query"`},
			{"/v1/agents/" + agentID(3), 200, `"state":"online"`},
			{"/v1/agents/" + agentID(99), 404, `"code":"not_found"`},
			{"/v1/agents/not-a-uuid", 400, `"code":"invalid_agent_id"`},
		} {
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.contains) {
				t.Errorf("GET %s: %d %s", tc.path, resp.StatusCode, body)
			}
		}
		if got := testutil.ToFloat64(h.svc.httpReqs.WithLabelValues("agents", string(mxp.CodeInvalidCapability))); got != 1 {
			t.Errorf("bad HTTP input not counted: %v", got)
		}
	})
}

func TestServiceMemory(t *testing.T) {
	runServiceSuite(t, func(t *testing.T) Store { return NewMemoryStore() })
}

func TestServiceRedis(t *testing.T) {
	runServiceSuite(t, func(t *testing.T) Store { return newRedisStore(t) })
}

func TestValidationErrors(t *testing.T) {
	h := newHarness(t, testConfig(), NewMemoryStore())
	long := strings.Repeat("a", mxp.MaxCapabilityLen+1)
	manyCaps := make([]string, 65)
	for i := range manyCaps {
		manyCaps[i] = "c" + strings.Repeat("x", i%10) + string(rune('a'+i%26))
	}
	good := reg(1, "ok", "chat")
	with := func(f func(r *mxp.RegisterRequest)) mxp.RegisterRequest { r := good; f(&r); return r }
	// withJSON is good with one field replaced by a value its Go type cannot hold.
	withJSON := func(key string, v any) []byte {
		var m map[string]any
		b, _ := json.Marshal(good)
		json.Unmarshal(b, &m)
		m[key] = v
		b, _ = json.Marshal(m)
		return b
	}
	tests := []struct {
		name    string
		subject string
		body    any
		code    mxp.ErrorCode
	}{
		{"not json", bus.SubjectRegistryRegister, "{", mxp.CodeInvalidPayload},
		{"empty", bus.SubjectRegistryRegister, "", mxp.CodeInvalidPayload},
		{"bad id", bus.SubjectRegistryRegister, withJSON("id", "agent-1"), mxp.CodeInvalidAgentID},
		{"nil id", bus.SubjectRegistryRegister, withJSON("id", "00000000-0000-0000-0000-000000000000"), mxp.CodeInvalidAgentID},
		{"empty name", bus.SubjectRegistryRegister, with(func(r *mxp.RegisterRequest) { r.Name = "" }), mxp.CodeInvalidName},
		{"long name", bus.SubjectRegistryRegister, with(func(r *mxp.RegisterRequest) { r.Name = strings.Repeat("é", mxp.MaxNameLen/2+1) }), mxp.CodeInvalidName},
		{"control in name", bus.SubjectRegistryRegister, with(func(r *mxp.RegisterRequest) { r.Name = "a\nb" }), mxp.CodeInvalidName},
		{"bad capability", bus.SubjectRegistryRegister, with(func(r *mxp.RegisterRequest) { r.Capabilities = []string{"a b"} }), mxp.CodeInvalidCapability},
		{"long capability", bus.SubjectRegistryRegister, with(func(r *mxp.RegisterRequest) { r.Capabilities = []string{long} }), mxp.CodeInvalidCapability},
		{"too many capabilities", bus.SubjectRegistryRegister, with(func(r *mxp.RegisterRequest) { r.Capabilities = manyCaps }), mxp.CodeTooManyCapabilities},
		{"no port", bus.SubjectRegistryRegister, withJSON("address", "127.0.0.1"), mxp.CodeInvalidPayload},
		{"port 0", bus.SubjectRegistryRegister, withJSON("address", "127.0.0.1:0"), mxp.CodeInvalidAddress},
		{"bad port", bus.SubjectRegistryRegister, withJSON("address", "127.0.0.1:70000"), mxp.CodeInvalidPayload},
		{"host name", bus.SubjectRegistryRegister, withJSON("address", "agent-1.example:80"), mxp.CodeInvalidPayload},
		{"metadata too large", bus.SubjectRegistryRegister, with(func(r *mxp.RegisterRequest) {
			r.Metadata.Description = strings.Repeat("d", 5000)
		}), mxp.CodeMetadataTooLarge},
		{"bad tag", bus.SubjectRegistryRegister, with(func(r *mxp.RegisterRequest) { r.Metadata.Tags = []string{""} }), mxp.CodeInvalidMetadata},
		{"metadata not object", bus.SubjectRegistryRegister, `{"id":"` + agentID(1) + `","name":"x","capabilities":[],"address":"127.0.0.1:1","metadata":5}`, mxp.CodeInvalidMetadata},
		{"heartbeat bad id", bus.SubjectRegistryHeartbeat, `{"agent_id":"x"}`, mxp.CodeInvalidAgentID},
		{"heartbeat not json", bus.SubjectRegistryHeartbeat, "[]", mxp.CodeInvalidPayload},
		{"deregister bad id", bus.SubjectRegistryDeregister, mxp.DeregisterRequest{}, mxp.CodeInvalidAgentID},
		{"discover bad capability", bus.SubjectRegistryDiscover, mxp.DiscoverRequest{Capability: "a b"}, mxp.CodeInvalidCapability},
		{"discover negative limit", bus.SubjectRegistryDiscover, mxp.DiscoverRequest{Limit: -1}, mxp.CodeInvalidQuery},
		{"discover bad after", bus.SubjectRegistryDiscover, mxp.DiscoverRequest{After: "x"}, mxp.CodeInvalidQuery},
		{"payload too large", bus.SubjectRegistryRegister, strings.Repeat(" ", 70<<10), mxp.CodeTooLarge},
	}
	for _, tc := range tests {
		err := h.call(t, tc.subject, tc.body, nil)
		var be *bus.Error
		if !errors.As(err, &be) || be.Code != tc.code || be.Message == "" {
			t.Errorf("%s: err = %v, want code %s", tc.name, err, tc.code)
		}
	}
	// Bad input is counted per code.
	if err := h.call(t, bus.SubjectRegistryRegister, good, nil); err != nil {
		t.Fatalf("a valid registration after bad ones: %v", err)
	}
}

func TestMetadataForms(t *testing.T) {
	tests := []struct {
		in   string
		want mxp.AgentMetadata
	}{
		{`{"version":"1","tags":["a","b"]}`, mxp.AgentMetadata{Version: "1", Tags: []string{"a", "b"}}},
		{`{"version":"1","tags":"a, b"}`, mxp.AgentMetadata{Version: "1", Tags: []string{"a", "b"}}},
		{`{"description":"d","owner":"me"}`, mxp.AgentMetadata{Description: "d", Extra: map[string]string{"owner": "me"}}},
		{`null`, mxp.AgentMetadata{}},
	}
	for _, tc := range tests {
		var m mxp.AgentMetadata
		if err := json.Unmarshal([]byte(tc.in), &m); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(tc.want)
		if string(a) != string(b) {
			t.Errorf("%s: got %s want %s", tc.in, a, b)
		}
	}
	for _, bad := range []string{`[]`, `{"tags":5}`, `{"version":1}`} {
		var m mxp.AgentMetadata
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestRedisReplicasExpireOnce runs two registries on one Redis: any replica serves any
// agent, and an expiry is announced exactly once.
func TestRedisReplicasExpireOnce(t *testing.T) {
	cfg := testConfig()
	cfg.Lease, cfg.HeartbeatInterval = time.Second, 300*time.Millisecond
	s1 := newRedisStore(t)
	s2, err := NewRedisStore(context.Background(), RedisOptions{URL: redisURL, Prefix: s1.prefix})
	if err != nil {
		t.Fatal(err)
	}
	h1 := newHarness(t, cfg, s1)
	addReplica(t, h1.bus, cfg, s2)
	sub := h1.subscribe(t)
	const n = 20
	for i := 1; i <= n; i++ {
		h1.call(t, bus.SubjectRegistryRegister, reg(i, "r", "x"), nil)
	}
	var mu sync.Mutex
	expired := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ev, subj, ok := nextEvent(t, sub, 500*time.Millisecond)
		if !ok {
			if len(expired) == n {
				break
			}
			continue
		}
		if subj == bus.SubjectRegistryExpired {
			mu.Lock()
			expired[ev.Agent.ID.String()]++
			mu.Unlock()
		}
	}
	if len(expired) != n {
		t.Fatalf("%d of %d agents expired", len(expired), n)
	}
	for id, c := range expired {
		if c != 1 {
			t.Fatalf("%s expired %d times", id, c)
		}
	}
}

// TestLiveConfig: a reloaded lease applies to the next registration.
func TestLiveConfig(t *testing.T) {
	h := newHarness(t, testConfig(), NewMemoryStore())
	cfg := h.svc.Config()
	cfg.Lease = 45 * time.Second
	h.svc.SetConfig(cfg)
	var rr mxp.RegisterResponse
	h.call(t, bus.SubjectRegistryRegister, reg(1, "a", "x"), &rr)
	if rr.LeaseSeconds != 45 {
		t.Fatalf("lease_seconds %v after reload", rr.LeaseSeconds)
	}
	a, _ := h.svc.Store().Get(context.Background(), agentID(1), time.Now())
	if d := time.Until(a.ExpiresAt); d < 40*time.Second {
		t.Fatalf("lease %v, want ~45s", d)
	}
}

// TestSrvInfo: the NATS tooling sees the registry through micro.
func TestSrvInfo(t *testing.T) {
	h := newHarness(t, testConfig(), NewMemoryStore())
	msg, err := h.client.Request("$SRV.INFO.registry", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{bus.SubjectRegistryRegister, bus.SubjectRegistryDiscover, bus.QueueRegistry} {
		if !strings.Contains(string(msg.Data), s) {
			t.Errorf("$SRV.INFO lacks %s: %s", s, msg.Data)
		}
	}
}

// TestAddressRule: the address of a registration is "" (reached through its edge) or an
// IP address and port 1-65535, the rule of pkg/mxp's RegisterRequest that the edge and
// the registry share; host names are refused.
func TestAddressRule(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"", true}, // reached through its edge connection (docs/protocol.md)
		{"127.0.0.1:9000", true},
		{"[::1]:9000", true},
		{"agent-1.example:443", false},
		{"127.0.0.1", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:70000", false},
		{"bad_host!:80", false},
	}
	for _, tc := range tests {
		body := `{"id":"` + agentID(1) + `","name":"a","capabilities":[],"address":"` + tc.addr + `"}`
		r, err := mxp.DecodeRegisterRequest([]byte(body))
		if err == nil {
			_, err = validateRegister(r, DefaultMetadataSize)
		}
		if (err == nil) != tc.ok {
			t.Errorf("address %q: %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}
