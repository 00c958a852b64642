package inference

import (
	"bufio"
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/health"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
	"github.com/mxp-mesh/mesh/services/inference/providertest"
	"github.com/prometheus/client_golang/prometheus"
)

// benchReply is a 20-token reply with usage, streamed as 20 SSE chunks.
var benchReply = providertest.Reply{Words: strings.Fields(strings.Repeat("token ", 20)), InputTokens: 12, OutputTokens: 20}

// doChat sends one Chat Completions request and returns the time to the first content
// chunk and to the end of the body.
func doChat(b *testing.B, client *http.Client, url, body string) (ttft, total time.Duration) {
	start := time.Now()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		b.Fatalf("HTTP %d: %s", resp.StatusCode, data)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadSlice('\n')
		if ttft == 0 && strings.Contains(string(line), `"content":"token`) {
			ttft = time.Since(start)
		}
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	total = time.Since(start)
	if ttft == 0 {
		ttft = total
	}
	return ttft, total
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
}

// BenchmarkGatewayOverhead sends the same load, paced at 1,000 requests/s per path, to the
// fake OpenAI provider directly and through /v1/chat/completions, interleaved in one run,
// and reports the latency and time to first token the gateway adds, and its memory per
// request. A bare httputil.ReverseProxy in front of the same fake is measured alongside
// (bare_proxy_added_p50_us): the cost of the extra hop alone.
func BenchmarkGatewayOverhead(b *testing.B) {
	for _, mode := range []struct {
		name   string
		stream bool
	}{{"stream", true}, {"nonstream", false}} {
		b.Run(mode.name, func(b *testing.B) {
			fake := providertest.New(providertest.OpenAI, benchReply)
			defer fake.Close()
			fake.SetRecording(false)
			gw := newBenchGateway(b, fake.URL)
			defer gw.Close()
			// A bare reverse proxy (no parsing, no re-encoding) gives the floor of one more
			// loopback hop on this machine, measured in the same run.
			bare := newBareProxy(fake.URL)
			defer bare.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
			streamBody := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}`
			gwBody := streamBody
			if !mode.stream {
				gwBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`
			}
			directURL, gwURL, bareURL := fake.URL+"/v1/chat/completions", gw.URL+"/v1/chat/completions", bare.URL+"/v1/chat/completions"
			// Warm the three paths (connections, pools, the heap's size) at the
			// measured pace for half a second, so that a short run measures the
			// steady state rather than its start.
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for range 500 {
				<-tick.C
				doChat(b, client, directURL, streamBody)
				doChat(b, client, gwURL, gwBody)
				doChat(b, client, bareURL, streamBody)
			}
			dTotal, gTotal, dTTFT, gTTFT, pTotal := newHist(), newHist(), newHist(), newHist(), newHist()
			b.ReportAllocs()
			b.ResetTimer()
			// Each tick sends one request on each path, in an order that rotates, so that no
			// path is always the first after the idle gap (which pays for waking the
			// machine) or always follows another.
			paths := [3]func(){
				func() {
					t, d := doChat(b, client, directURL, streamBody)
					dTotal.RecordValue(d.Microseconds())
					dTTFT.RecordValue(t.Microseconds())
				},
				func() {
					t, d := doChat(b, client, gwURL, gwBody)
					gTotal.RecordValue(d.Microseconds())
					gTTFT.RecordValue(t.Microseconds())
				},
				func() {
					_, d := doChat(b, client, bareURL, streamBody)
					pTotal.RecordValue(d.Microseconds())
				},
			}
			for i := range b.N {
				<-tick.C
				for k := range 3 {
					paths[(i+k)%3]()
				}
			}
			b.StopTimer()
			// Memory: bytes allocated per request on each path, measured apart.
			perReq := func(url, body string) float64 {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				const n = 200
				for range n {
					doChat(b, client, url, body)
				}
				runtime.ReadMemStats(&m1)
				return float64(m1.TotalAlloc-m0.TotalAlloc) / n
			}
			direct, through := perReq(directURL, streamBody), perReq(gwURL, gwBody)
			q := func(h *hdrhistogram.Histogram, p float64) float64 { return float64(h.ValueAtQuantile(p)) }
			b.ReportMetric(q(dTotal, 50), "direct_p50_us")
			b.ReportMetric(q(gTotal, 50), "gateway_p50_us")
			b.ReportMetric(q(gTotal, 50)-q(dTotal, 50), "added_p50_us")
			b.ReportMetric(q(gTotal, 99)-q(dTotal, 99), "added_p99_us")
			b.ReportMetric(q(pTotal, 50)-q(dTotal, 50), "bare_proxy_added_p50_us")
			b.ReportMetric(q(gTotal, 50)-q(pTotal, 50), "over_bare_proxy_p50_us")
			if mode.stream {
				b.ReportMetric(q(gTTFT, 50)-q(dTTFT, 50), "added_ttft_p50_us")
				b.ReportMetric(q(gTTFT, 99)-q(dTTFT, 99), "added_ttft_p99_us")
			}
			b.ReportMetric(through-direct, "added_bytes/req")
		})
	}
}

// BenchmarkServiceStreamMock is the in-process cost of one call through routing,
// breaker, concurrency limit, metrics and tracing with the mock provider (no HTTP).
func BenchmarkServiceStreamMock(b *testing.B) {
	svc, err := New(Defaults(), Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	req := &ChatRequest{Request: api.Request{Model: "mock", Messages: userMsg("one two three four")}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := svc.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseOpenAIRequest parses a plain chat request (the fast path) and one with a
// tool (the general path after the fast one gave up), each beside the general path
// alone: the ratio of the two is the gain, or the cost of trying first.
func BenchmarkParseOpenAIRequest(b *testing.B) {
	for _, c := range []struct{ name, body string }{
		{"plain", `{"model":"gpt-4o","stream":true,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]}`},
		{"tools", `{"model":"gpt-4o","stream":true,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}],` + weatherTool + `}`},
	} {
		for _, p := range []struct {
			name  string
			parse func([]byte) (*ChatRequest, bool, bool, error)
		}{{"ParseOpenAIRequest", ParseOpenAIRequest}, {"general_only", parseOpenAIRequest}} {
			b.Run(c.name+"/"+p.name, func(b *testing.B) {
				body := []byte(c.body)
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for range b.N {
					if _, _, _, err := p.parse(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGatewayPath runs one path at a time, unpaced and serial: direct to the fake,
// through a bare httputil.ReverseProxy, and through the gateway. It is for profiles and
// syscall counts of one path (go test -cpuprofile, strace -c with -benchtime Nx);
// BenchmarkGatewayOverhead is the measurement.
func BenchmarkGatewayPath(b *testing.B) {
	for _, stream := range []bool{true, false} {
		mode := "nonstream"
		if stream {
			mode = "stream"
		}
		for _, path := range []string{"direct", "bare", "gateway"} {
			b.Run(mode+"/"+path, func(b *testing.B) {
				fake := providertest.New(providertest.OpenAI, benchReply)
				defer fake.Close()
				fake.SetRecording(false)
				url, body := fake.URL+"/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}`
				switch path {
				case "bare":
					srv := newBareProxy(fake.URL)
					defer srv.Close()
					url = srv.URL + "/v1/chat/completions"
				case "gateway":
					srv := newBenchGateway(b, fake.URL)
					defer srv.Close()
					url = srv.URL + "/v1/chat/completions"
					if !stream {
						body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`
					}
				}
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
				for range 50 {
					doChat(b, client, url, body)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					doChat(b, client, url, body)
				}
			})
		}
	}
}

// benchGateway is the inference HTTP API served as mxp-inference serves it.
type benchGateway struct {
	URL string
	srv *cmetrics.Server
}

func (g *benchGateway) Close() { g.srv.Shutdown(context.Background()) }

// newBenchGateway serves the inference service's HTTP API with OpenAI pointed at the fake
// provider at fakeURL, on the service's own HTTP server (metrics.Server, default limits)
// on loopback.
func newBenchGateway(b *testing.B, fakeURL string) *benchGateway {
	cfg := Defaults()
	cfg.Providers[KindOpenAI] = ProviderConfig{BaseURL: fakeURL + "/v1"}
	svc, err := New(cfg, Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	srv := cmetrics.NewServer(cmetrics.ServerConfig{Addr: "127.0.0.1:0"}, cmetrics.NewRegistry("inference"), health.NewChecker(nil))
	svc.Routes(srv.Router())
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	return &benchGateway{URL: "http://" + srv.Addr(), srv: srv}
}

// newBareProxy serves a bare httputil.ReverseProxy to fakeURL (no parsing, no
// re-encoding, flushing at once): the cost of one more loopback hop alone.
func newBareProxy(fakeURL string) *httptest.Server {
	target, _ := neturl.Parse(fakeURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	return httptest.NewServer(rp)
}
