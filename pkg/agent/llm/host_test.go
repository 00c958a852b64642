package llm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// codedErr is a provider adapter's typed error, as the inference service's are.
type codedErr struct{ code string }

func (e codedErr) Error() string         { return "upstream said " + e.code }
func (e codedErr) InferenceCode() string { return e.code }

func TestModelHostCall(t *testing.T) {
	h := NewModelHost()
	if err := h.Add("echo", AdapterModel{Adapter: scriptAdapter{}}); err != nil {
		t.Fatal(err)
	}
	streamed := 0
	if err := h.Add("streamer", ChatStreamerFunc(func(ctx context.Context, req *ChatRequest) (Stream, error) {
		streamed++
		return AdapterModel{Adapter: scriptAdapter{}}.ChatStream(ctx, req)
	})); err != nil {
		t.Fatal(err)
	}
	if err := h.Add("limited", Streaming(ChatModelFunc(func(context.Context, *ChatRequest) (*ChatResponse, error) {
		return nil, codedErr{"rate_limited"}
	}))); err != nil {
		t.Fatal(err)
	}
	if got := h.Capabilities(); len(got) != 3 || got[0] != "model.echo" || got[2] != "model.streamer" {
		t.Fatalf("capabilities %q", got)
	}
	call := func(model string, body any) (*ChatResponse, error) {
		payload, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			payload = []byte(s)
		}
		out, err := h.HandleCall(context.Background(), payload)
		if err != nil {
			return nil, err
		}
		var resp ChatResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		return &resp, nil
	}
	req := func(model string) ChatRequest {
		return NewChatRequest(model, Message{Role: RoleUser, Content: "hello there"})
	}
	resp, err := call("echo", req("echo"))
	if err != nil || resp.Text != "Reply to: hello there" || resp.Model != "echo" || resp.Provider != "script" {
		t.Fatalf("echo: %+v, %v", resp, err)
	}
	if resp, err := call("streamer", req("streamer")); err != nil || resp.Text != "Reply to: hello there" || streamed != 1 {
		t.Fatalf("a streamer is collected: %+v, %v (streamed %d)", resp, err, streamed)
	}
	for _, tc := range []struct {
		body any
		code mxp.ErrorCode
	}{
		{"{not json", mxp.CodeInvalidRequest},
		{NewChatRequest("echo"), mxp.CodeInvalidRequest}, // no messages
		{req("nosuch"), mxp.CodeNotFound},
		{req("limited"), "rate_limited"}, // the adapter's own code passes
	} {
		if _, err := call("", tc.body); agent.CodeOf(err) != tc.code {
			t.Errorf("%v: %v, want %s", tc.body, err, tc.code)
		}
	}
}

func TestModelHostAdd(t *testing.T) {
	h := NewModelHost()
	if err := h.Add("", AdapterModel{Adapter: scriptAdapter{}}); agent.CodeOf(err) != agent.CodeInvalidArgument {
		t.Errorf("Add(\"\") = %v", err)
	}
	for _, name := range []string{"with space", "tab\t", strings.Repeat("m", mxp.MaxCapabilityLen)} {
		if err := h.Add(name, AdapterModel{Adapter: scriptAdapter{}}); agent.CodeOf(err) != agent.CodeInvalidArgument ||
			!errors.Is(err, mxp.ErrInvalidPayload) {
			t.Errorf("Add(%.20q) = %v", name, err)
		}
	}
	for _, name := range []string{"Echo", "meta/llama3.2:1b", strings.Repeat("m", mxp.MaxCapabilityLen-len("model."))} {
		if err := h.Add(name, AdapterModel{Adapter: scriptAdapter{}}); err != nil {
			t.Errorf("Add(%.20q) = %v", name, err)
		}
	}
	if err := h.Add("ok", nil); agent.CodeOf(err) != agent.CodeInvalidArgument {
		t.Errorf("a nil model: %v", err)
	}
}

func TestCodedError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		code mxp.ErrorCode
	}{
		{context.Background(), agent.Errorf(agent.CodeOverloaded, "busy"), agent.CodeOverloaded},
		{context.Background(), codedErr{"context_overflow"}, "context_overflow"},
		{ctx, context.Canceled, agent.CodeCanceled},
		{context.Background(), errors.New("boom"), agent.CodeInternal},
	} {
		if got := agent.CodeOf(codedError(tc.ctx, tc.err)); got != tc.code {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.code)
		}
	}
}

// TestModelHostInstallTooMany: installing on an agent whose capabilities would pass
// mxp.MaxCapabilities is an error the caller sees (before, Install dropped Advertise's
// refusal and the agent's registration failed later, at the registry).
func TestModelHostInstallTooMany(t *testing.T) {
	caps := make([]string, mxp.MaxCapabilities)
	for i := range caps {
		caps[i] = "cap." + strings.Repeat("x", i+1)
	}
	a, err := agent.New(agent.Config{Name: "full", Capabilities: caps})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ServeModel(a, "echo", AdapterModel{Adapter: scriptAdapter{}}); agent.CodeOf(err) != mxp.CodeTooManyCapabilities {
		t.Fatalf("ServeModel on an agent with %d capabilities: %v, want too_many_capabilities", len(caps), err)
	}
	b, err := agent.New(agent.Config{Name: "room", Capabilities: caps[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ServeModel(b, "echo", AdapterModel{Adapter: scriptAdapter{}}); err != nil {
		t.Fatalf("ServeModel with room: %v", err)
	}
}
