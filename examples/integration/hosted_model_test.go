package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// hostedMesh is a mesh (meshtest: the module list through mesh.Start) with more edges
// on its bus, by name; the inference service serves the models agents host
// ("mxp/<agent>/<model>") over the bus and its OpenAI-compatible API over HTTP.
type hostedMesh struct {
	*meshtest.Mesh
	api string // base URL of the OpenAI-compatible API
}

// startHostedMesh starts the mesh with the named edges and the inference section
// inferenceYAML of the mesh's config file ("" for the defaults).
func startHostedMesh(t testing.TB, inferenceYAML string, edgeNames ...string) *hostedMesh {
	t.Helper()
	dir := t.TempDir()
	o := meshtest.Options{Logger: quiet(), Edges: edgeNames}
	if inferenceYAML != "" {
		o.ConfigFile = filepath.Join(dir, "mesh.yaml")
		if err := os.WriteFile(o.ConfigFile, []byte("inference:\n"+inferenceYAML), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mt, err := meshtest.StartWith(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mt.Close(); err != nil {
			t.Errorf("mesh: %v", err)
		}
	})
	return &hostedMesh{Mesh: mt, api: mt.InferenceURL}
}

// agent returns an agent named name connected to the edge edgeName (not yet running).
func (m *hostedMesh) agent(t testing.TB, edgeName, name string) *agent.Agent {
	t.Helper()
	e := m.Edges[edgeName]
	a, err := agent.New(agent.Config{Name: name, EdgeAddr: e.Addr, EdgeKey: e.Key,
		KeyFile: filepath.Join(t.TempDir(), "agent.key"), HeartbeatInterval: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// metric is the value of the series of the named metric with every label in labels (0
// when there is none).
func (m *hostedMesh) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Mesh.Mesh.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			if s.GetCounter() != nil {
				return s.GetCounter().GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return 0
}

// echoModel is a model in an agent's own code: it streams "echo:" and each word of the
// last message as a chunk of its own, then the finish reason and usage. It records the
// kind of message each request came in (a Call or a stream).
type echoModel struct {
	mu    sync.Mutex
	kinds []agent.Kind
}

func (e *echoModel) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	m, _ := agent.MetaFrom(ctx)
	e.mu.Lock()
	e.kinds = append(e.kinds, m.Kind)
	e.mu.Unlock()
	words := append([]string{"echo:"}, strings.Fields(req.Messages[len(req.Messages)-1].Content)...)
	chunks := make([]llm.Chunk, 0, len(words)+1)
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		chunks = append(chunks, llm.Chunk{Text: w})
	}
	chunks = append(chunks, llm.Chunk{FinishReason: llm.FinishStop, Usage: &llm.Usage{InputTokens: 7, OutputTokens: len(words)}})
	return &funcChunks{next: func() (llm.Chunk, error) {
		if len(chunks) == 0 {
			return llm.Chunk{}, io.EOF
		}
		c := chunks[0]
		chunks = chunks[1:]
		return c, nil
	}}, nil
}

func (e *echoModel) lastKind() agent.Kind {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.kinds) == 0 {
		return 0
	}
	return e.kinds[len(e.kinds)-1]
}

type funcChunks struct {
	next func() (llm.Chunk, error)
	stop func()
}

func (f *funcChunks) Recv() (llm.Chunk, error) { return f.next() }
func (f *funcChunks) Close() error {
	if f.stop != nil {
		f.stop()
	}
	return nil
}

// endlessModel streams chunks as fast as it can until its context ends, which it reports
// on stopped. Each chunk sent after the caller's close is refused by the edge with an
// Error frame: the first ends the agent's stream (its handler's Recv returns it, which
// cancels the model), and at retirement, when nobody receives, they are shed rather than
// queued ahead of the deregister's answer (mxp.Conn). With the old correlator this model
// made retiring fail with "deregister: context deadline exceeded" in 6 of 15 runs.
func endlessModel(stopped chan<- error) llm.ChatStreamer {
	return llm.ChatStreamerFunc(func(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
		var once sync.Once
		report := func(err error) { once.Do(func() { stopped <- err }) }
		n := 0
		return &funcChunks{next: func() (llm.Chunk, error) {
			n++
			if err := ctx.Err(); err != nil {
				report(err)
				return llm.Chunk{}, err
			}
			return llm.Chunk{Text: "more "}, nil
		}, stop: func() { report(ctx.Err()) }}, nil
	})
}

func hostedConfig() string {
	return `  models:
    mxp/flaky/echo:
      provider: mxp
      fallbacks: [mock]
      resilience:
        max_retries: -1
        breaker:
          consecutive_failures: 2
`
}

// TestHostedModelAcrossTwoEdges: an agent on edge A serves a model; a caller on edge B
// and an OpenAI client reach it as "mxp/host/echo" through the inference service, whole
// and streamed; bad names and missing models are typed errors; a caller's close stops the
// agent's model.
func TestHostedModelAcrossTwoEdges(t *testing.T) {
	m := startHostedMesh(t, hostedConfig(), "a", "b")
	host := m.agent(t, "a", "host")
	echo := &echoModel{}
	mh, err := llm.ServeModel(host, "echo", echo)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	if err := mh.Add("endless", endlessModel(stopped)); err != nil {
		t.Fatal(err)
	}
	host.Advertise(mh.Capabilities()...)
	meshtest.Run(t, host)
	caller := m.agent(t, "b", "caller")
	meshtest.Run(t, caller)
	model := llm.Mesh(caller)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := func(name, text string) *llm.ChatRequest {
		r := llm.NewChatRequest(name, llm.Message{Role: llm.RoleUser, Content: text})
		return &r
	}

	t.Run("stream from an agent on edge B", func(t *testing.T) {
		st, err := model.OpenStream(ctx, req("mxp/host/echo", "hello from b"))
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		var finish llm.FinishReason
		for {
			c, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Text != "" {
				texts = append(texts, c.Text)
			}
			if c.FinishReason != "" {
				finish = c.FinishReason
			}
		}
		if got := strings.Join(texts, ""); got != "echo: hello from b" || len(texts) != 4 {
			t.Fatalf("streamed %q in %d chunks, want \"echo: hello from b\" in 4", got, len(texts))
		}
		if finish != llm.FinishStop || st.Model() != "mxp/host/echo" || st.Provider() != "mxp" {
			t.Fatalf("finish %q, model %q, provider %q", finish, st.Model(), st.Provider())
		}
		if k := echo.lastKind(); k != agent.KindStreamOpen {
			t.Fatalf("the model was asked by a %s, want a stream", k)
		}
	})

	t.Run("whole answer in one Call", func(t *testing.T) {
		resp, err := model.Chat(ctx, req("mxp/host/echo", "once"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != "echo: once" || resp.Provider != "mxp" || resp.Usage.InputTokens != 7 {
			t.Fatalf("got %+v", resp)
		}
		if k := echo.lastKind(); k != agent.KindCall {
			t.Fatalf("the model was asked by a %s, want a Call", k)
		}
	})

	t.Run("OpenAI API streamed and whole", func(t *testing.T) {
		text, done := openAIStream(t, m.api, "mxp/host/echo", "over http")
		if text != "echo: over http" || !done {
			t.Fatalf("SSE text %q, [DONE] %v", text, done)
		}
		status, body := openAIChat(t, m.api, "mxp/host/echo", "whole over http")
		if status != http.StatusOK || !strings.Contains(body, `"content":"echo: whole over http"`) {
			t.Fatalf("HTTP %d: %s", status, body)
		}
		resp, err := http.Get(m.api + "/models")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Data []struct {
				ID      string `json:"id"`
				OwnedBy string `json:"owned_by"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		hosted := map[string]string{}
		for _, d := range list.Data {
			if strings.HasPrefix(d.ID, "mxp/") {
				hosted[d.ID] = d.OwnedBy
			}
		}
		// The configured mxp/flaky/echo is listed too (its provider is on), hosted or not.
		if len(hosted) != 3 || hosted["mxp/host/echo"] != "mxp" || hosted["mxp/host/endless"] != "mxp" {
			t.Fatalf("/v1/models lists the hosted models %v", hosted)
		}
	})

	t.Run("typed errors", func(t *testing.T) {
		for _, tc := range []struct{ model, code string }{
			{"mxp/host", "invalid_request"},           // no model part
			{"mxp/host/two words", "invalid_request"}, // not a capability
			{"mxp/host/nosuch", "model_not_found"},    // the agent serves no such model
			{"mxp/nobody/echo", "model_not_found"},    // no agent of that name
			{"mxp/caller/echo", "model_not_found"},    // an agent that hosts nothing
		} {
			_, err := model.Chat(ctx, req(tc.model, "x"))
			if got := string(agent.CodeOf(err)); got != tc.code {
				t.Errorf("%s over the mesh: code %q (%v), want %s", tc.model, got, err, tc.code)
			}
			status, body := openAIChat(t, m.api, tc.model, "x")
			if !strings.Contains(body, `"code":"`+tc.code+`"`) || status < 400 {
				t.Errorf("%s over HTTP: %d %s, want code %s", tc.model, status, body, tc.code)
			}
		}
	})

	t.Run("closing the stream stops the agent's model", func(t *testing.T) {
		st, err := model.OpenStream(ctx, req("mxp/host/endless", "go"))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if c, err := st.Recv(); err != nil || c.Text != "more " {
				t.Fatalf("chunk %q, %v", c.Text, err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-stopped:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("the model stopped with %v, want its context canceled", err)
			}
		case <-ctx.Done():
			t.Fatal("the agent's model was never stopped")
		}
	})
}

// TestHostedModelGoneFallsBack: the agent hosting "mxp/flaky/echo" is on edge C; while it
// answers, it answers; once edge C is gone (its bus connection closed, so the registry
// still lists the agent but nothing carries it), each call fails over to the fallback
// "mock" with code unavailable, the breaker opens after two failures, and the next call
// fails over at once with circuit_open.
func TestHostedModelGoneFallsBack(t *testing.T) {
	m := startHostedMesh(t, hostedConfig(), "b", "c")
	flaky := m.agent(t, "c", "flaky")
	if _, err := llm.ServeModel(flaky, "echo", &echoModel{}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan struct{})
	go func() { defer close(ran); _ = flaky.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-ran })
	waitUntil(t, "flaky active", func() bool { return flaky.State() == agent.StateActive })

	const name = "mxp/flaky/echo"
	if status, body := openAIChat(t, m.api, name, "up"); status != http.StatusOK || !strings.Contains(body, "echo: up") {
		t.Fatalf("while the agent is up: HTTP %d %s", status, body)
	}
	m.Mesh.Mesh.EdgeBus("c").Close() // edge C is gone from the bus; the registry still lists flaky

	fell := func(code string) float64 {
		return m.metric(t, "mxp_inference_fallbacks_total", map[string]string{"from": name, "to": "mock", "code": code})
	}
	for i := range 3 {
		status, body := openAIChat(t, m.api, name, "down")
		if status != http.StatusOK || !strings.Contains(body, "Mock reply to: down") {
			t.Fatalf("call %d after the agent went: HTTP %d %s, want the fallback's answer", i, status, body)
		}
	}
	if got := fell("unavailable"); got != 2 {
		t.Errorf("fallbacks on unavailable = %v, want 2", got)
	}
	if got := fell("circuit_open"); got != 1 {
		t.Errorf("fallbacks on circuit_open = %v, want 1", got)
	}
	if got := m.metric(t, "mxp_inference_breaker_state", map[string]string{"provider": "mxp", "model": name}); got != 2 {
		t.Errorf("breaker state = %v, want 2 (open)", got)
	}
	if got := m.metric(t, "mxp_inference_calls_total", map[string]string{"provider": "mxp", "model": name, "code": "unavailable"}); got != 2 {
		t.Errorf("calls_total{code=unavailable} = %v, want 2", got)
	}
}

// openAIChat posts a non-streamed chat completion and returns the status and body.
func openAIChat(t testing.TB, base, model, text string) (int, string) {
	t.Helper()
	resp := postChat(t, base, model, text, false)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// openAIStream posts a streamed chat completion and returns the concatenated content and
// whether the stream ended with [DONE].
func openAIStream(t testing.TB, base, model, text string) (string, bool) {
	t.Helper()
	resp := postChat(t, base, model, text, true)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
	var out strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return out.String(), true
		}
		var ev struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("SSE event %q: %v", data, err)
		}
		for _, c := range ev.Choices {
			out.WriteString(c.Delta.Content)
		}
	}
	return out.String(), false
}

func postChat(t testing.TB, base, model, text string, stream bool) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": model, "stream": stream,
		"messages": []map[string]string{{"role": "user", "content": text}}})
	resp, err := http.Post(base+"/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// BenchmarkHostedModel measures what serving a model from an agent costs over calling the
// agent directly, in one run: each iteration makes, in turn, a direct Call from an agent
// on edge B to an echo agent on edge A (the ChatRequest's JSON as payload, echoed back;
// the baseline), the same request as a whole chat through the inference service to the
// model "mxp/host/echo" hosted on edge A (one Call from the service to the agent), the
// agent's model streamed straight to the caller (a stream between the two agents; the
// streaming baseline), and the same chat streamed through the service (a stream from the
// caller to the service, and one from the service to the agent). It reports each path's
// median, the whole chat's over the direct Call's and the streamed chat's over the direct
// stream's.
func BenchmarkHostedModel(b *testing.B) {
	m := startHostedMesh(b, "", "a", "b")
	host := m.agent(b, "a", "host")
	if _, err := llm.ServeModel(host, "echo", &echoModel{}); err != nil {
		b.Fatal(err)
	}
	echo := m.agent(b, "a", "echo")
	echo.HandleCall(func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	caller := m.agent(b, "b", "caller")
	for _, a := range []*agent.Agent{host, echo, caller} {
		meshtest.Run(b, a)
	}
	model := llm.Mesh(caller)
	ctx := context.Background()
	req := llm.NewChatRequest("mxp/host/echo", llm.Message{Role: llm.RoleUser, Content: "one two three"})
	own := req // what the agent itself receives from the service: its model's own name
	own.Model = "echo"
	payload, _ := json.Marshal(&own)

	direct := func() error { _, err := caller.Call(ctx, echo.ID(), payload); return err }
	whole := func() error { _, err := model.Chat(ctx, &req); return err }
	streamed := func() error {
		st, err := model.OpenStream(ctx, &req)
		if err != nil {
			return err
		}
		for {
			if _, err := st.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	directStream := func() error { // the agent's model, streamed to the caller without the service
		cs, err := caller.OpenStream(ctx, host.ID(), mxp.StreamKindJSON, payload)
		if err != nil {
			return err
		}
		for {
			if _, err := cs.Recv(ctx); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	paths := []func() error{direct, whole, directStream, streamed}
	for range 50 { // warm the connections, pools and the registry lookup
		for _, p := range paths {
			if err := p(); err != nil {
				b.Fatal(err)
			}
		}
	}
	times := make([][]time.Duration, len(paths))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range paths {
			p := (i + j) % len(paths) // rotate the order: the first after a pause pays for waking up
			start := time.Now()
			if err := paths[p](); err != nil {
				b.Fatal(err)
			}
			times[p] = append(times[p], time.Since(start))
		}
	}
	b.StopTimer()
	med := make([]float64, len(paths))
	for p, ts := range times {
		slices.Sort(ts)
		med[p] = float64(ts[len(ts)/2].Microseconds())
	}
	b.ReportMetric(med[0], "direct_call_p50_us")
	b.ReportMetric(med[1], "hosted_chat_p50_us")
	b.ReportMetric(med[2], "direct_stream_p50_us")
	b.ReportMetric(med[3], "hosted_stream_p50_us")
	b.ReportMetric(med[1]/med[0], "chat/call")
	b.ReportMetric(med[3]/med[2], "stream/stream")
}
