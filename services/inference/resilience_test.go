package inference

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
	"github.com/mxp-mesh/mesh/services/inference/providertest"
	"github.com/mxp-mesh/mesh/services/inference/upstream"
)

var okReply = providertest.Reply{Words: []string{"all ", "good"}, InputTokens: 10, OutputTokens: 2}

func fakeConfig(kind, url string, res Resilience) Config {
	cfg := Defaults()
	cfg.Providers[kind] = ProviderConfig{Kind: kind, BaseURL: url, Resilience: res}
	if kind == KindOpenAI {
		p := cfg.Providers[kind]
		p.BaseURL = url + "/v1"
		cfg.Providers[kind] = p
	}
	return cfg
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name      string
		faults    []providertest.Fault
		res       Resilience
		wantCode  provider.Code // "" = success
		wantCalls int
		wantWaits []time.Duration
	}{
		{"500 then 429 with Retry-After then ok",
			[]providertest.Fault{{Status: 500}, {Status: 429, RetryAfter: "3"}}, Resilience{},
			"", 3, []time.Duration{250 * time.Millisecond, 3 * time.Second}},
		{"529 overloaded, backoff doubles", []providertest.Fault{{Status: 529}, {Status: 529}}, Resilience{},
			"", 3, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{"backoff capped", []providertest.Fault{{Status: 500}, {Status: 500}, {Status: 500}},
			Resilience{MaxRetries: 3, BackoffBase: time.Second, BackoffMax: 1500 * time.Millisecond},
			"", 4, []time.Duration{time.Second, 1500 * time.Millisecond, 1500 * time.Millisecond}},
		{"retries exhausted", []providertest.Fault{{Status: 500}, {Status: 500}, {Status: 500}}, Resilience{},
			provider.CodeProviderError, 3, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{"400 is not retried", []providertest.Fault{{Status: 400}}, Resilience{},
			provider.CodeInvalidRequest, 1, nil},
		{"401 is not retried", []providertest.Fault{{Status: 401}}, Resilience{},
			provider.CodeUnauthenticated, 1, nil},
		{"Retry-After beyond the cap ends retrying", []providertest.Fault{{Status: 429, RetryAfter: "120"}}, Resilience{},
			provider.CodeRateLimited, 1, nil},
		{"retries disabled", []providertest.Fault{{Status: 500}}, Resilience{MaxRetries: -1},
			provider.CodeProviderError, 1, nil},
		{"malformed chunk before anything was passed on is retried", []providertest.Fault{{Malformed: true}}, Resilience{},
			"", 2, []time.Duration{250 * time.Millisecond}},
	}
	for _, kind := range []string{KindOpenAI, KindAnthropic, KindGemini, KindOllama} {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				srv := providertest.New(kind, okReply)
				defer srv.Close()
				srv.Push(tc.faults...)
				env := newTestService(t, fakeConfig(kind, srv.URL, tc.res), nil)
				model := map[string]string{KindOpenAI: "gpt-x", KindAnthropic: "claude-x", KindGemini: "gemini-x", KindOllama: "ollama/llama"}[kind]
				resp, err := env.svc.Chat(context.Background(), chatReq(model, "hi"))
				if tc.wantCode == "" {
					if err != nil {
						t.Fatal(err)
					}
					eq(t, "text", resp.Text, "all good")
				} else {
					eq(t, "code", provider.CodeOf(err), tc.wantCode)
				}
				eq(t, "upstream calls", len(srv.Requests()), tc.wantCalls)
				if got := env.sleep.recorded(); !slices.Equal(got, tc.wantWaits) {
					t.Errorf("waits %v, want %v", got, tc.wantWaits)
				}
				eq(t, "retry metric", metricValue(t, env.reg, "mxp_inference_retries_total", nil), float64(len(tc.wantWaits)))
			})
		}
	}
}

func TestNoRetryAfterFirstByte(t *testing.T) {
	srv := providertest.New(providertest.OpenAI, providertest.Reply{Words: []string{"a ", "b ", "c ", "d ", "e"}})
	defer srv.Close()
	srv.Push(providertest.Fault{ResetAfter: 3})
	env := newTestService(t, fakeConfig(KindOpenAI, srv.URL, Resilience{}), nil)
	st, err := env.svc.Stream(context.Background(), chatReq("gpt-x", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got strings.Builder
	for {
		c, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				t.Fatal("stream ended cleanly after a reset")
			}
			eq(t, "code", provider.CodeOf(err), provider.CodeProviderError)
			break
		}
		got.WriteString(c.Text)
	}
	eq(t, "text passed on before the reset", got.String(), "a b ")
	eq(t, "upstream calls", len(srv.Requests()), 1)
	eq(t, "waits", len(env.sleep.recorded()), 0)
}

func TestFirstTokenTimeout(t *testing.T) {
	srv := providertest.New(providertest.Anthropic, okReply)
	defer srv.Close()
	// The fault holds the first token for a minute; the test takes as long as the
	// 20ms first-token timeout, not the minute.
	srv.Push(providertest.Fault{FirstTokenDelay: time.Minute}, providertest.Fault{FirstTokenDelay: time.Minute})
	env := newTestService(t, fakeConfig(KindAnthropic, srv.URL, Resilience{FirstTokenTimeout: 20 * time.Millisecond, MaxRetries: 1}), nil)
	_, err := env.svc.Chat(context.Background(), chatReq("claude-x", "hi"))
	eq(t, "code", provider.CodeOf(err), provider.CodeTimeout)
	if !strings.Contains(err.Error(), "first token") {
		t.Errorf("error %q does not name the first-token timeout", err)
	}
	eq(t, "calls", len(srv.Requests()), 2)

	// A slow first attempt and a fast second: the retry succeeds.
	srv.Push(providertest.Fault{FirstTokenDelay: time.Minute})
	resp, err := env.svc.Chat(context.Background(), chatReq("claude-x", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "text", resp.Text, "all good")

	// A per-request override wins over the configured 20ms: a 60ms first token passes.
	srv.Push(providertest.Fault{FirstTokenDelay: 60 * time.Millisecond})
	before := len(srv.Requests())
	req := chatReq("claude-x", "hi")
	req.FirstTokenTimeoutMs = 10_000
	if _, err := env.svc.Chat(context.Background(), req); err != nil {
		t.Fatalf("with override: %v", err)
	}
	eq(t, "calls with override", len(srv.Requests())-before, 1)
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	srv := providertest.New(providertest.OpenAI, okReply)
	defer srv.Close()
	srv.Push(providertest.Fault{Status: 500}, providertest.Fault{Status: 500}, providertest.Fault{Status: 500})
	res := Resilience{MaxRetries: -1, Breaker: BreakerConfig{ConsecutiveFailures: 3, OpenTimeout: 30 * time.Millisecond}}
	env := newTestService(t, fakeConfig(KindOpenAI, srv.URL, res), nil)
	cfg := env.svc.Config()
	cfg.DefaultModel = "gpt-x"
	if err := env.svc.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := env.svc.Chat(context.Background(), chatReq("gpt-x", "hi"))
		eq(t, "code", provider.CodeOf(err), provider.CodeProviderError)
	}
	_, err := env.svc.Chat(context.Background(), chatReq("gpt-x", "hi"))
	eq(t, "open breaker code", provider.CodeOf(err), provider.CodeCircuitOpen)
	eq(t, "calls (open breaker fails fast)", len(srv.Requests()), 3)
	labels := map[string]string{"provider": "openai", "model": "gpt-x"}
	eq(t, "breaker gauge", metricValue(t, env.reg, "mxp_inference_breaker_state", labels), 2.0)
	rd := env.svc.Ready()
	if rd.Ready || len(rd.Breakers) != 1 || rd.Breakers[0].State != "open" {
		t.Errorf("readiness %+v", rd)
	}
	if err := env.svc.HealthCheck(context.Background()); err == nil || !strings.Contains(err.Error(), "openai/gpt-x open") {
		t.Errorf("health check %v", err)
	}
	rec := httptest.NewRecorder()
	env.svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz/inference", nil))
	eq(t, "readyz status", rec.Code, 503)
	if !strings.Contains(rec.Body.String(), `"state":"open"`) {
		t.Errorf("readyz body %s", rec.Body)
	}
	// After the open timeout a probe goes through; its success closes the breaker.
	deadline := time.Now().Add(5 * time.Second)
	for env.svc.Ready().Breakers[0].State == "open" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := env.svc.Chat(context.Background(), chatReq("gpt-x", "hi")); err != nil {
		t.Fatalf("half-open probe: %v", err)
	}
	eq(t, "breaker closed", env.svc.Ready().Breakers[0].State, "closed")
	eq(t, "transitions to open", metricValue(t, env.reg, "mxp_inference_breaker_transitions_total",
		map[string]string{"from": "closed", "to": "open"}), 1.0)
}

func TestFallbackChain(t *testing.T) {
	bad := providertest.New(providertest.OpenAI, okReply)
	defer bad.Close()
	good := providertest.New(providertest.Anthropic, providertest.Reply{Words: []string{"from ", "claude"}})
	defer good.Close()
	bad.Push(providertest.Fault{Status: 503}, providertest.Fault{Status: 503}, providertest.Fault{Status: 400})
	cfg := Defaults()
	cfg.Providers[KindOpenAI] = ProviderConfig{BaseURL: bad.URL + "/v1", Resilience: Resilience{MaxRetries: 1}}
	cfg.Providers[KindAnthropic] = ProviderConfig{BaseURL: good.URL}
	cfg.Models["gpt-x"] = ModelConfig{Provider: KindOpenAI, Fallbacks: []string{"claude-y", "mock"}}
	env := newTestService(t, cfg, nil)
	st, err := env.svc.Stream(context.Background(), chatReq("gpt-x", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := provider.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "text", resp.Text, "from claude")
	eq(t, "provider", st.Provider, "anthropic")
	eq(t, "fallback from", st.FallbackFrom, "gpt-x")
	eq(t, "fallback metric", metricValue(t, env.reg, "mxp_inference_fallbacks_total",
		map[string]string{"from": "gpt-x", "to": "claude-y"}), 1.0)

	// invalid_request fails everywhere: no fallback.
	_, err = env.svc.Chat(context.Background(), chatReq("gpt-x", "hi"))
	eq(t, "code", provider.CodeOf(err), provider.CodeInvalidRequest)
	eq(t, "anthropic calls", len(good.Requests()), 1)
}

// gateAdapter sends one chunk, then blocks until the stream is closed or release closes.
type gateAdapter struct {
	calls   atomic.Int32
	release chan struct{}
}

func (g *gateAdapter) Name() string { return "gate" }
func (g *gateAdapter) Stream(ctx context.Context, _ *api.Request) (api.Stream, error) {
	g.calls.Add(1)
	return &gateStream{ctx: ctx, release: g.release}, nil
}

type gateStream struct {
	ctx     context.Context
	release chan struct{}
	n       int
}

func (s *gateStream) Recv() (api.Chunk, error) {
	s.n++
	if s.n == 1 {
		return api.Chunk{Text: "first"}, nil
	}
	select {
	case <-s.release:
		return api.Chunk{}, io.EOF
	case <-s.ctx.Done():
		return api.Chunk{}, provider.AsError(s.ctx.Err())
	}
}
func (s *gateStream) Close() error { return nil }

func TestConcurrencyLimit(t *testing.T) {
	gate := &gateAdapter{release: make(chan struct{})}
	cfg := Defaults()
	cfg.Providers["slow"] = ProviderConfig{Kind: KindMock, Prefixes: []string{"slow-"}, Resilience: Resilience{MaxConcurrency: 1}}
	env := newTestService(t, cfg, map[string]api.ModelAdapter{"slow": gate})
	first, err := env.svc.Stream(context.Background(), chatReq("slow-1", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "inflight", metricValue(t, env.reg, "mxp_inference_inflight", map[string]string{"provider": "slow"}), 1.0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = env.svc.Stream(ctx, chatReq("slow-1", "hi"))
	if err == nil {
		t.Fatal("a second call went past a full concurrency limit")
	}
	eq(t, "adapter calls", gate.calls.Load(), int32(1))
	// Other providers are not affected.
	if _, err := env.svc.Chat(context.Background(), chatReq("mock", "hi")); err != nil {
		t.Fatal(err)
	}
	first.Close()
	second, err := env.svc.Stream(context.Background(), chatReq("slow-1", "hi"))
	if err != nil {
		t.Fatalf("slot not released by Close: %v", err)
	}
	second.Close()
	eq(t, "inflight after close", metricValue(t, env.reg, "mxp_inference_inflight", map[string]string{"provider": "slow"}), 0.0)
}

func TestUsageEstimatedWhenMissing(t *testing.T) {
	srv := providertest.New(providertest.Ollama, providertest.Reply{Words: []string{"hello ", "there"}})
	defer srv.Close()
	cfg := fakeConfig(KindOllama, srv.URL, Resilience{})
	cfg.Models["ollama/llama"] = ModelConfig{Provider: KindOllama, Upstream: "llama", InputPrice: 1e6, OutputPrice: 2e6}
	env := newTestService(t, cfg, nil)
	resp, err := env.svc.Chat(context.Background(), chatReq("ollama/llama", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	// The fake reports zero counts: Ollama's counts are taken as reported.
	eq(t, "reported input", resp.Usage.InputTokens, 0)
	srv.SetReply(providertest.Reply{Words: []string{"x"}, InputTokens: 3, OutputTokens: 1})
	if _, err := env.svc.Chat(context.Background(), chatReq("ollama/llama", "hi")); err != nil {
		t.Fatal(err)
	}
	eq(t, "cost", metricValue(t, env.reg, "mxp_inference_cost_usd_total", nil), 3.0+2.0)
	eq(t, "upstream model name", strings.Contains(string(srv.Requests()[0].Body), `"model":"llama"`), true)

	// The mock path reports usage; a stream with no usage at all gets the estimate.
	gate := &gateAdapter{release: make(chan struct{})}
	close(gate.release)
	cfg2 := Defaults()
	cfg2.Providers["g"] = ProviderConfig{Kind: KindMock, Prefixes: []string{"g-"}}
	env2 := newTestService(t, cfg2, map[string]api.ModelAdapter{"g": gate})
	r2, err := env2.svc.Chat(context.Background(), chatReq("g-1", "hello world"))
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Usage.Estimated || r2.Usage.InputTokens == 0 || r2.Usage.OutputTokens != 1 {
		t.Errorf("estimated usage %+v", r2.Usage)
	}
}

// TestUpstreamConnectionsReused checks that finished streams hand their connection back
// to the pool (a new TCP connection per call would add a round trip to every request).
func TestUpstreamConnectionsReused(t *testing.T) {
	for _, kind := range []string{KindOpenAI, KindAnthropic, KindGemini, KindOllama} {
		t.Run(kind, func(t *testing.T) {
			srv := providertest.New(kind, okReply)
			defer srv.Close()
			env := newTestService(t, fakeConfig(kind, srv.URL, Resilience{}), nil)
			model := map[string]string{KindOpenAI: "gpt-x", KindAnthropic: "claude-x", KindGemini: "gemini-x", KindOllama: "ollama/llama"}[kind]
			for range 20 {
				if _, err := env.svc.Chat(context.Background(), chatReq(model, "hi")); err != nil {
					t.Fatal(err)
				}
			}
			// A connection closed after a finished stream would not be reused. (How many
			// were dialled varies: a finished stream's last bytes are drained off the
			// caller's path, so a call may race ahead of that and dial another, which then
			// also stays open.)
			eq(t, "connections closed", srv.Closed(), int64(0))
			if n := srv.Conns(); n >= 20 {
				t.Errorf("%d connections for 20 sequential calls", n)
			}
		})
	}
}

// TestUpstreamConnectionOutlivesCaller checks that a connection goes back to the pool
// when the caller's context ends as soon as the call returns (an HTTP request's does)
// while the end of the upstream body (the chunked terminator) is still in flight: the
// drain must not be aborted by the caller's context, or every such call would cost the
// next one a new connection (a TLS handshake to a real provider).
func TestUpstreamConnectionOutlivesCaller(t *testing.T) {
	for _, kind := range []string{KindOpenAI, KindAnthropic, KindGemini, KindOllama} {
		t.Run(kind, func(t *testing.T) {
			srv := providertest.New(kind, okReply)
			defer srv.Close()
			env := newTestService(t, fakeConfig(kind, srv.URL, Resilience{}), nil)
			tr := env.svc.deps.HTTPClient.Transport.(*upstream.Transport)
			model := map[string]string{KindOpenAI: "gpt-x", KindAnthropic: "claude-x", KindGemini: "gemini-x", KindOllama: "ollama/llama"}[kind]
			for i := range 3 {
				srv.Push(providertest.Fault{TerminatorDelay: 30 * time.Millisecond})
				ctx, cancel := context.WithCancel(context.Background())
				_, err := env.svc.Chat(ctx, chatReq(model, "hi"))
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				// The drain ends with the connection either back in the pool or closed.
				deadline := time.Now().Add(10 * time.Second)
				for tr.IdleConns() == 0 && srv.Closed() == 0 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				eq(t, fmt.Sprintf("call %d: connections closed", i), srv.Closed(), int64(0))
				eq(t, fmt.Sprintf("call %d: idle connections", i), tr.IdleConns(), 1)
			}
			eq(t, "connections dialled", srv.Conns(), int64(1))
		})
	}
}

// TestConcurrentStreamsOwnTheirBuffers runs streams of all four providers at once, some
// read to the end and some abandoned midway, and checks that every finished one read
// exactly its own provider's text: the read buffers recycled after a clean end must
// never be shared with a live stream (the race detector watches the pool too).
func TestConcurrentStreamsOwnTheirBuffers(t *testing.T) {
	cfg := Defaults()
	want := map[string]string{}
	models := map[string]string{KindOpenAI: "gpt-x", KindAnthropic: "claude-x", KindGemini: "gemini-x", KindOllama: "ollama/llama"}
	for _, kind := range []string{KindOpenAI, KindAnthropic, KindGemini, KindOllama} {
		var words []string
		for i := range 40 {
			words = append(words, fmt.Sprintf("%s-%d ", kind, i))
		}
		srv := providertest.New(kind, providertest.Reply{Words: words, InputTokens: 3, OutputTokens: 40})
		defer srv.Close()
		srv.SetRecording(false)
		url := srv.URL
		if kind == KindOpenAI {
			url += "/v1"
		}
		cfg.Providers[kind] = ProviderConfig{Kind: kind, BaseURL: url}
		want[kind] = strings.Join(words, "")
	}
	env := newTestService(t, cfg, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				kind := []string{KindOpenAI, KindAnthropic, KindGemini, KindOllama}[(g+i)%4]
				st, err := env.svc.Stream(context.Background(), chatReq(models[kind], "hi"))
				if err != nil {
					t.Error(err)
					return
				}
				var text strings.Builder
				abandon := (g*40+i)%5 == 0
				for n := 0; ; n++ {
					if abandon && n == 10 {
						break
					}
					c, err := st.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Errorf("%s: %v", kind, err)
						break
					}
					text.WriteString(c.Text)
				}
				st.Close()
				if !abandon && text.String() != want[kind] {
					t.Errorf("%s stream read %q, want %q", kind, text.String(), want[kind])
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestAbortNearTheEnd closes streams from another goroutine while they are read, at
// moments around their last event. Under the race detector it fails if an abort recycles
// a read buffer that the reading goroutine has just used (an abort must only close).
func TestAbortNearTheEnd(t *testing.T) {
	for _, kind := range []string{KindOpenAI, KindOllama} {
		t.Run(kind, func(t *testing.T) {
			srv := providertest.New(kind, okReply)
			defer srv.Close()
			srv.SetRecording(false)
			env := newTestService(t, fakeConfig(kind, srv.URL, Resilience{}), nil)
			model := map[string]string{KindOpenAI: "gpt-x", KindOllama: "ollama/llama"}[kind]
			for i := range 200 {
				st, err := env.svc.Stream(context.Background(), chatReq(model, "hi"))
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				wg.Go(func() {
					time.Sleep(time.Duration(i%7) * 20 * time.Microsecond)
					st.Close()
				})
				for {
					_, err := st.Recv()
					st.Buffered()
					if err != nil {
						break
					}
				}
				wg.Wait()
			}
		})
	}
}

func TestHTTPTimeoutOverride(t *testing.T) {
	srv := providertest.New(providertest.OpenAI, okReply)
	defer srv.Close()
	srv.Push(providertest.Fault{FirstTokenDelay: time.Minute})
	env := newTestService(t, fakeConfig(KindOpenAI, srv.URL, Resilience{MaxRetries: -1}), nil)
	gw := httptest.NewServer(env.svc.Handler())
	defer gw.Close()
	resp := post(t, gw.URL, "", `{"model":"gpt-x","mxp_first_token_timeout_ms":20,"messages":[{"role":"user","content":"x"}]}`)
	defer resp.Body.Close()
	eq(t, "status", resp.StatusCode, 504)
}

// TestClientDisconnectMidStreamCancelsUpstream: a caller that goes away mid-stream ends
// the upstream request too (the provider sees its request's context end), and the
// call is counted as canceled, for every provider wire format.
func TestClientDisconnectMidStreamCancelsUpstream(t *testing.T) {
	first := map[string]string{
		KindOpenAI:    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok\"}}]}\n\n",
		KindAnthropic: "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok\"}}\n\n",
		KindGemini:    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"tok\"}]},\"index\":0}]}\n\n",
		KindOllama:    "{\"model\":\"llama\",\"message\":{\"role\":\"assistant\",\"content\":\"tok\"},\"done\":false}\n",
	}
	model := map[string]string{KindOpenAI: "gpt-x", KindAnthropic: "claude-x", KindGemini: "gemini-x", KindOllama: "ollama/llama"}
	for _, kind := range []string{KindOpenAI, KindAnthropic, KindGemini, KindOllama} {
		t.Run(kind, func(t *testing.T) {
			upstreamDone := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, first[kind])
				w.(http.Flusher).Flush()
				<-r.Context().Done() // a provider still generating
				close(upstreamDone)
			}))
			defer up.Close()
			env := newTestService(t, fakeConfig(kind, up.URL, Resilience{MaxRetries: -1}), nil)
			gw := httptest.NewServer(env.svc.Handler())
			defer gw.Close()
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL+"/v1/chat/completions",
				strings.NewReader(`{"model":"`+model[kind]+`","stream":true,"messages":[{"role":"user","content":"x"}]}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("stream ended before the first token: %v", err)
				}
				if strings.Contains(line, `"content":"tok"`) {
					break
				}
			}
			cancel()
			resp.Body.Close()
			select {
			case <-upstreamDone:
			case <-time.After(30 * time.Second): // a hang guard, not a speed assertion
				t.Fatal("the upstream request was not cancelled")
			}
			// The call is recorded once the handler has unwound (the in-flight gauge
			// drops just before the counter moves, so wait on the counter).
			canceled := map[string]string{"code": "canceled"}
			for i := 0; metricValue(t, env.reg, "mxp_inference_calls_total", canceled) == 0; i++ {
				if i > 3000 {
					t.Fatal("the call was never counted as canceled")
				}
				time.Sleep(time.Millisecond)
			}
			eq(t, "calls counted canceled", metricValue(t, env.reg, "mxp_inference_calls_total", canceled), 1.0)
			eq(t, "calls in flight", metricValue(t, env.reg, "mxp_inference_inflight", nil), 0.0)
		})
	}
}

// TestOpenModelNamesBounded checks that model names chosen by clients (through a prefix
// route) cannot grow the metrics and breakers without end: past MaxOpenModels names a
// provider counts and breaks the rest under OtherModels, while they are still served and
// configured models keep their own names.
func TestOpenModelNamesBounded(t *testing.T) {
	cfg := Defaults()
	cfg.Providers["g"] = ProviderConfig{Kind: KindMock, Prefixes: []string{"g-"}}
	cfg.Models["g-configured"] = ModelConfig{Provider: "g"}
	// An alias target reaches the provider through its prefix, but the config names it.
	cfg.Aliases = map[string]string{"fast": "g-fast"}
	env := newTestService(t, cfg, nil)
	const extra = 10
	for i := range MaxOpenModels + extra {
		if _, err := env.svc.Chat(context.Background(), chatReq(fmt.Sprintf("g-%d", i), "hi")); err != nil {
			t.Fatal(err)
		}
	}
	// A name seen before the bound keeps its own label; the configured ones have theirs.
	for _, m := range []string{"g-0", "g-configured", "fast"} {
		if _, err := env.svc.Chat(context.Background(), chatReq(m, "hi")); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := env.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "mxp_inference_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "model" {
					series[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	eq(t, "model labels", len(series), MaxOpenModels+3) // the admitted names, _other, the configured two
	eq(t, "calls counted as "+OtherModels, series[OtherModels], float64(extra))
	eq(t, "calls of g-0", series["g-0"], 2.0)
	eq(t, "calls of g-configured", series["g-configured"], 1.0)
	eq(t, "calls of the alias target g-fast", series["g-fast"], 1.0)
	breakers := 0
	for _, b := range env.svc.routes.Load().breakerStatus() {
		if b.Provider == "g" {
			breakers++
		}
	}
	eq(t, "breakers", breakers, MaxOpenModels+3)
}
