package integration

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// streamMesh is meshtest's mesh whose inference service also serves "mock-slow" (the
// mock provider with a delay per chunk), set in the mesh's config file; its metrics are
// read from the process's registry.
type streamMesh struct {
	addr, key string
	reg       prometheus.Gatherer
}

func startStreamMesh(t *testing.T) *streamMesh {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	if err := os.WriteFile(file, []byte(`inference:
  providers:
    slow: {kind: mock, prefixes: [slow-], token_delay: 20ms}
  models:
    mock-slow: {provider: slow, context_window: 8192, output_reserve: 1024}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	mt, err := meshtest.StartWith(dir, meshtest.Options{ConfigFile: file})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mt.Close(); err != nil {
			t.Errorf("mesh: %v", err)
		}
	})
	return &streamMesh{addr: mt.EdgeAddr, key: mt.EdgeKey, reg: mt.Mesh.Metrics}
}

func (m *streamMesh) agent(t *testing.T, name string) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{Name: name, EdgeAddr: m.addr, EdgeKey: m.key,
		KeyFile: t.TempDir() + "/agent.key", HeartbeatInterval: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	meshtest.Run(t, a)
	return a
}

// inflight is the inference service's mxp_inference_inflight, summed over providers.
func (m *streamMesh) inflight(t *testing.T) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "mxp_inference_inflight" {
			for _, s := range mf.GetMetric() {
				n += s.GetGauge().GetValue()
			}
		}
	}
	return n
}

// calls is the inference service's mxp_inference_calls_total for model and result code.
func (m *streamMesh) calls(t *testing.T, model, code string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "mxp_inference_calls_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] == model && labels["code"] == code {
				n += s.GetCounter().GetValue()
			}
		}
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("timed out waiting for %s; goroutines:\n%s", what, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInferenceStreamThroughTheEdge: an SDK agent streams a model's answer from the
// inference service through the edge over the secure transport: the deltas arrive in
// order and join to the non-streamed answer; an unknown model's typed code arrives as the
// stream's error; closing early ends the stream everywhere without leaking goroutines.
func TestInferenceStreamThroughTheEdge(t *testing.T) {
	m := startStreamMesh(t)
	a := m.agent(t, "streamer")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tests := []struct {
		name string
		req  llm.ChatRequest
	}{
		{"text", llm.NewChatRequest("mock", llm.Message{Role: llm.RoleUser, Content: "stream these seven words to me please"})},
		{"tool call", func() llm.ChatRequest {
			r := llm.NewChatRequest("mock", llm.Message{Role: llm.RoleUser, Content: `use shout {"text":"quiet"}`})
			r.Tools = []api.Tool{{Name: "shout", Description: "upper-case", Parameters: []byte(`{"type":"object"}`)}}
			return r
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := llm.Mesh(a).Chat(ctx, &tc.req)
			if err != nil {
				t.Fatalf("non-streamed: %v", err)
			}
			s, err := llm.Mesh(a).OpenStream(ctx, &tc.req)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			var chunks []api.Chunk
			for {
				c, err := s.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("recv after %d chunks: %v", len(chunks), err)
				}
				chunks = append(chunks, c)
			}
			wantChunks := provider.MockChunks(&tc.req.Request)
			if len(chunks) != len(wantChunks) {
				t.Fatalf("%d chunks, want %d (the mock's stream)", len(chunks), len(wantChunks))
			}
			for i := range chunks {
				if chunks[i].Text != wantChunks[i].Text || (chunks[i].ToolCall == nil) != (wantChunks[i].ToolCall == nil) ||
					chunks[i].FinishReason != wantChunks[i].FinishReason {
					t.Errorf("chunk %d = %+v, want %+v (in order)", i, chunks[i], wantChunks[i])
				}
			}
			got, err := llm.CollectStream(&sliceStream{chunks: chunks})
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != want.Text || got.FinishReason != want.FinishReason || got.Usage != want.Usage ||
				len(got.ToolCalls) != len(want.ToolCalls) || (len(got.ToolCalls) > 0 && got.ToolCalls[0] != want.ToolCalls[0]) {
				t.Errorf("streamed answer %+v, want the non-streamed %+v", got, want)
			}
			if s.Model() != want.Model || s.Provider() != want.Provider {
				t.Errorf("summary says %s/%s, want %s/%s", s.Model(), s.Provider(), want.Model, want.Provider)
			}
		})
	}

	t.Run("the mesh model is a ChatStreamer", func(t *testing.T) {
		var cs llm.ChatStreamer = llm.Mesh(a)
		req := llm.NewChatRequest("mock", llm.Message{Role: llm.RoleUser, Content: "hello"})
		s, err := cs.ChatStream(ctx, &req)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := llm.CollectStream(s)
		if err != nil || resp.Text != "Mock reply to: hello" {
			t.Fatalf("collected %+v, %v", resp, err)
		}
	})

	t.Run("unknown model", func(t *testing.T) {
		req := llm.NewChatRequest("no-such-model", llm.Message{Role: llm.RoleUser, Content: "hi"})
		s, err := llm.Mesh(a).OpenStream(ctx, &req)
		if err == nil {
			_, err = s.Recv()
		}
		if agent.CodeOf(err) != "model_not_found" {
			t.Fatalf("unknown model: %v (code %s), want model_not_found", err, agent.CodeOf(err))
		}
	})

	t.Run("close early", func(t *testing.T) {
		before := runtime.NumGoroutine()
		// 500 words at 20 ms each: the stream would run for 10 s if nothing stopped it.
		req := llm.NewChatRequest("mock-slow", llm.Message{Role: llm.RoleUser, Content: strings.Repeat("word ", 500)})
		s, err := llm.Mesh(a).OpenStream(ctx, &req)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := s.Recv(); err != nil || c.Text == "" {
			t.Fatalf("first chunk %+v, %v", c, err)
		}
		if m.inflight(t) != 1 {
			t.Fatalf("the service has %v streams in flight, want 1", m.inflight(t))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); agent.CodeOf(err) != agent.CodeCanceled {
			t.Errorf("recv after close: %v, want canceled", err)
		}
		waitUntil(t, "the service's stream to end", func() bool { return m.inflight(t) == 0 })
		// Cancelled, not run to its end: the close reached the service's context.
		if c, ok := m.calls(t, "mock-slow", "canceled"), m.calls(t, "mock-slow", "ok"); c != 1 || ok != 0 {
			t.Errorf("the service counted %v cancelled and %v completed mock-slow calls, want 1 and 0", c, ok)
		}
		waitUntil(t, "the stream's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	})
}

// sliceStream replays chunks as a api.Stream.
type sliceStream struct {
	chunks []api.Chunk
	i      int
}

func (s *sliceStream) Recv() (api.Chunk, error) {
	if s.i >= len(s.chunks) {
		return api.Chunk{}, io.EOF
	}
	s.i++
	return s.chunks[s.i-1], nil
}

func (s *sliceStream) Close() error { return nil }
