package integration

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// The SDK's LLM toolkit against the inference service embedded in the same process (the
// SDK itself cannot import the service, so these live here): the service and a provider
// adapter are models of the toolkit through the shared wire contract (pkg/api/inference).

type shoutArgs struct {
	Text string `json:"text"`
}

func newShoutTool(t *testing.T, runs *atomic.Int32) *llm.Tool {
	t.Helper()
	tool, err := llm.NewTool("shout", "upper-case a text", func(_ context.Context, a shoutArgs) (string, error) {
		runs.Add(1)
		return strings.ToUpper(a.Text), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tool
}

// TestToolLoopWithInferenceService: *inference.Service is a ChatModel; the tool loop runs
// against it with its built-in configuration (the mock provider), retries and budgeting
// included; the mock provider's adapter is one too.
func TestToolLoopWithInferenceService(t *testing.T) {
	svc, err := inference.New(inference.Defaults(), inference.Deps{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		model    llm.ChatModel
		provider string
	}{{"service", svc, "mock"}, {"adapter", llm.AdapterModel{Adapter: &provider.Mock{}}, "mock"}} {
		t.Run(tc.name, func(t *testing.T) {
			var runs atomic.Int32
			box, err := llm.NewToolbox(newShoutTool(t, &runs))
			if err != nil {
				t.Fatal(err)
			}
			res, err := (&llm.ToolLoop{Model: tc.model, Tools: box}).Run(context.Background(),
				llm.NewChatRequest("mock", llm.Message{Role: llm.RoleUser, Content: `use shout {"text":"quiet"}`}))
			if err != nil {
				t.Fatal(err)
			}
			if runs.Load() != 1 || res.Answer.Content != `Tool shout returned: "QUIET".` || res.Provider != tc.provider {
				t.Fatalf("result = %+v", res)
			}
		})
	}
}

// TestRelayTextFromInferenceService: the service in process is a ChatStreamer, and
// RelayText passes its answer on chunk by chunk.
func TestRelayTextFromInferenceService(t *testing.T) {
	svc, err := inference.New(inference.Defaults(), inference.Deps{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	var streamer llm.ChatStreamer = svc
	req := llm.NewChatRequest("", llm.Message{Role: llm.RoleUser, Content: "stream these four words"})
	src, err := streamer.ChatStream(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	sink := &textSink{}
	resp, err := llm.RelayText(context.Background(), sink, src)
	if err != nil {
		t.Fatal(err)
	}
	want := "Mock reply to: stream these four words"
	if resp.Text != want || strings.Join(sink.chunks, "") != want || len(sink.chunks) < 4 || resp.FinishReason != llm.FinishStop {
		t.Fatalf("relayed %q in %d chunks, response %+v", sink.chunks, len(sink.chunks), resp)
	}
	if _, err := streamer.ChatStream(context.Background(), &llm.ChatRequest{}); err == nil {
		t.Fatal("an empty request streamed")
	}
}

type textSink struct{ chunks []string }

func (s *textSink) Send(_ context.Context, b []byte) error {
	s.chunks = append(s.chunks, string(b))
	return nil
}
