package inference

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/services/inference/provider"
	"github.com/mxp-mesh/mesh/services/inference/providertest"
	"github.com/nats-io/nats.go"
)

func startBus(t *testing.T, cfg Config) (*nats.Conn, *testEnv) {
	t.Helper()
	return startBusEnv(t, newTestService(t, cfg, nil))
}

// startBusEnv runs env's service on an embedded bus and returns a client connection.
func startBusEnv(t *testing.T, env *testEnv) (*nats.Conn, *testEnv) {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	svcConn, err := srv.Connect("inference")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svcConn.Close)
	env.svc.deps.Conn = svcConn
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	nc, err := srv.Connect("client")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// Wait until the endpoints are subscribed (a models request answers). "No
	// responders" comes back at once while Run is still subscribing, so wait between
	// tries.
	for i := 0; ; i++ {
		if _, err := nc.Request(bus.SubjectInferenceModels, []byte("{}"), time.Second); err == nil {
			break
		} else if i > 500 {
			t.Fatalf("service not up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nc, env
}

func TestBusChat(t *testing.T) {
	nc, _ := startBus(t, Defaults())
	cases := []struct {
		name, body string
		wantText   string
		wantKind   string
	}{
		{"ok", `{"model":"mock","messages":[{"role":"user","content":"hi"}]}`, "Mock reply to: hi", ""},
		{"bad json", `{"model":`, "", "invalid_request"},
		{"no messages", `{"model":"mock","messages":[]}`, "", "invalid_request"},
		{"unknown model", `{"model":"zzz","messages":[{"role":"user","content":"x"}]}`, "", "model_not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := nc.Request(bus.SubjectInferenceChat, []byte(tc.body), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantKind != "" {
				berr, _ := bus.ReplyError(msg).(*bus.Error)
				if berr == nil {
					t.Fatalf("want error %s, got %s", tc.wantKind, msg.Data)
				}
				eq(t, "kind", string(berr.Code), tc.wantKind)
				return
			}
			var resp ChatResponse
			if err := json.Unmarshal(msg.Data, &resp); err != nil {
				t.Fatal(err)
			}
			eq(t, "text", resp.Text, tc.wantText)
			eq(t, "provider", resp.Provider, "mock")
		})
	}
}

// busStream runs the documented streaming protocol as a caller would.
func busStream(t *testing.T, nc *nats.Conn, body string) (chunks []api.Chunk, end *nats.Msg) {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	h := nats.Header{}
	bus.SetDeadline(h, time.Now().Add(10*time.Second))
	if err := nc.PublishMsg(&nats.Msg{Subject: bus.SubjectInferenceStream, Reply: inbox, Data: []byte(body), Header: h}); err != nil {
		t.Fatal(err)
	}
	for seq := 0; ; seq++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got := m.Header.Get(bus.HeaderStreamSeq)
		if got == "" {
			return chunks, m // the terminal message
		}
		eq(t, "seq", got, strconv.Itoa(seq))
		var c api.Chunk
		if err := json.Unmarshal(m.Data, &c); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
	}
}

func TestBusStream(t *testing.T) {
	nc, _ := startBus(t, Defaults())
	chunks, end := busStream(t, nc, `{"model":"mock","messages":[{"role":"user","content":"a b c"}]}`)
	var text strings.Builder
	for _, c := range chunks {
		text.WriteString(c.Text)
	}
	eq(t, "text", text.String(), "Mock reply to: a b c")
	eq(t, "chunks", len(chunks), 7)
	if bus.ReplyError(end) != nil {
		t.Fatalf("terminal error: %v", bus.ReplyError(end))
	}
	var sum StreamSummary
	json.Unmarshal(end.Data, &sum)
	eq(t, "finish", sum.FinishReason, api.FinishStop)
	eq(t, "output tokens", sum.Usage.OutputTokens, 6)

	// Tool calls stream as tool_call chunks.
	chunks, _ = busStream(t, nc, `{"model":"mock","messages":[{"role":"user","content":"use lookup"}],"tools":[{"name":"lookup"}]}`)
	if len(chunks) < 2 || chunks[0].ToolCall == nil || chunks[0].ToolCall.Name != "lookup" {
		t.Errorf("tool call chunks %+v", chunks)
	}

	// Errors end the stream with a typed terminal message.
	chunks, end = busStream(t, nc, `{"model":"mock","messages":[{"role":"robot","content":"x"}]}`)
	eq(t, "chunks before error", len(chunks), 0)
	berr, _ := bus.ReplyError(end).(*bus.Error)
	if berr == nil || berr.Code != "invalid_request" || berr.Status() != 400 {
		t.Errorf("terminal error %+v", berr)
	}
}

// FuzzBusChatRequest feeds arbitrary bytes through the bus request path (decode, validate,
// route, mock) and checks that every outcome is a response or a typed error.
func FuzzBusChatRequest(f *testing.F) {
	f.Add([]byte(`{"model":"mock","messages":[{"role":"user","content":"use t {\"a\":1}"}],"tools":[{"name":"t"}]}`))
	f.Add([]byte(`{"messages":[{"role":"tool","tool_call_id":"x","content":"r"}],"context_budget":"drop","max_tokens":3}`))
	env := newTestService(f, Defaults(), nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req ChatRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		resp, err := env.svc.Chat(context.Background(), &req)
		if err == nil && resp == nil {
			t.Fatal("nil response without error")
		}
		if err != nil && provider.CodeOf(err) == "" {
			t.Fatalf("untyped error %v", err)
		}
	})
}

func TestBusPerAgentRateLimit(t *testing.T) {
	cfg := Defaults()
	cfg.BusRatePerAgent = 0.001 // a burst of 1, then about one request in 17 minutes
	nc, _ := startBus(t, cfg)
	call := func(agent string) string {
		msg := nats.NewMsg(bus.SubjectInferenceChat)
		msg.Data = []byte(`{"model":"mock","messages":[{"role":"user","content":"hi"}]}`)
		bus.SetAgentID(msg.Header, agent)
		reply, err := nc.RequestMsg(msg, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if berr, ok := bus.ReplyError(reply).(*bus.Error); ok && berr != nil {
			return string(berr.Code)
		}
		return "ok"
	}
	eq(t, "first call of agent a", call("a"), "ok")
	eq(t, "second call of agent a", call("a"), "rate_limited")
	eq(t, "agent b has its own budget", call("b"), "ok")
}

func TestBusStreamErrorAfterChunks(t *testing.T) {
	fake := providertest.New(providertest.OpenAI, providertest.Reply{Words: []string{"a ", "b ", "c ", "d"}})
	defer fake.Close()
	fake.Push(providertest.Fault{ResetAfter: 3})
	nc, _ := startBus(t, fakeConfig(KindOpenAI, fake.URL, Resilience{}))
	chunks, end := busStream(t, nc, `{"model":"gpt-x","messages":[{"role":"user","content":"x"}]}`)
	eq(t, "chunks before the reset", len(chunks), 2)
	berr, _ := bus.ReplyError(end).(*bus.Error)
	if berr == nil || berr.Code != "provider_error" {
		t.Errorf("terminal %v, want provider_error", bus.ReplyError(end))
	}
}
