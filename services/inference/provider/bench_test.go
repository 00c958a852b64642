package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// streamBodies are 20-token replies in each provider's wire format.
func streamBodies() map[string]struct {
	body []byte
	dec  func(io.ReadCloser) api.Stream
} {
	var oa, an, gm, ol bytes.Buffer
	an.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n")
	an.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for i := range 20 {
		fmt.Fprintf(&oa, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token%d \"},\"finish_reason\":null}]}\n\n", i)
		fmt.Fprintf(&an, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"token%d \"}}\n\n", i)
		fmt.Fprintf(&gm, "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"token%d \"}]},\"index\":0}]}\n\n", i)
		fmt.Fprintf(&ol, "{\"model\":\"llama\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"token%d \"},\"done\":false}\n", i)
	}
	oa.WriteString("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	oa.WriteString("data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":20}}\n\ndata: [DONE]\n\n")
	an.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	an.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":20}}\n\n")
	an.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	gm.WriteString("data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":12,\"candidatesTokenCount\":20}}\n\n")
	ol.WriteString("{\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":12,\"eval_count\":20}\n")
	return map[string]struct {
		body []byte
		dec  func(io.ReadCloser) api.Stream
	}{
		"openai": {oa.Bytes(), provider.NewOpenAIStream}, "anthropic": {an.Bytes(), provider.NewAnthropicStream},
		"gemini": {gm.Bytes(), provider.NewGeminiStream}, "ollama": {ol.Bytes(), provider.NewOllamaStream},
	}
}

// BenchmarkDecodeStream decodes a 20-token streamed reply per op; ns/chunk is the
// per-token cost an adapter adds.
func BenchmarkDecodeStream(b *testing.B) {
	for name, c := range streamBodies() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			var r bytes.Reader
			for range b.N {
				r.Reset(c.body)
				s := c.dec(io.NopCloser(&r))
				n := 0
				for {
					ch, err := s.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if ch.Text != "" {
						n++
					}
				}
				if n != 20 {
					b.Fatalf("%d text chunks", n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20, "ns/chunk")
		})
	}
}

func BenchmarkBuildRequest(b *testing.B) {
	req := goldenRequest("m")
	for name, build := range map[string]func(*api.Request) (any, error){
		"openai": provider.BuildOpenAIRequest, "anthropic": provider.BuildAnthropicRequest,
		"gemini": provider.BuildGeminiRequest, "ollama": provider.BuildOllamaRequest,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := build(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEstimateTokens(b *testing.B) {
	text := strings.Repeat("Agents call models through the mesh; operators get one place for keys. ", 100)
	b.SetBytes(int64(len(text)))
	for range b.N {
		provider.EstimateTokens(text)
	}
}

func ExampleMock() {
	m := &provider.Mock{}
	s, _ := m.Stream(context.Background(), &api.Request{
		Messages: []api.Message{{Role: api.RoleUser, Content: "hello"}},
	})
	resp, _ := provider.Collect(s)
	fmt.Println(resp.Text, resp.FinishReason)
	// Output: Mock reply to: hello stop
}
