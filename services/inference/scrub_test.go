package inference

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/services/inference/provider"
	"github.com/mxp-mesh/mesh/services/inference/providertest"
)

// syncBuffer is a log sink safe for the service's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leaks reports every form of key found in text.
func leaks(text, key string) []string {
	var out []string
	for _, f := range []string{key, url.QueryEscape(key), "abc+123"} {
		if strings.Contains(text, f) {
			out = append(out, f)
		}
	}
	return out
}

// The attack of issue 15, point 5: an upstream that echoes the API key it was sent in its
// 401 body. The caller, over HTTP and over the bus, gets the typed error unauthenticated
// with a short message of ours, and neither the answer nor the service's logs carry the
// key in any spelling.
func TestUpstreamEchoedKeyNeverLeaves(t *testing.T) {
	const key = "live-ECHO/abc+123=zz-0042" // not shaped like a known key: only registration removes it
	models := map[string]string{KindOpenAI: "gpt-x", KindAnthropic: "claude-x", KindGemini: "gemini-x", KindOllama: "ollama/llama"}
	for _, kind := range []string{KindOpenAI, KindAnthropic, KindGemini, KindOllama} {
		t.Run(kind, func(t *testing.T) {
			fake := providertest.New(kind, okReply)
			defer fake.Close()
			fake.SetRecording(true)
			cfg := fakeConfig(kind, fake.URL, Resilience{})
			p := cfg.Providers[kind]
			p.APIKey = security.NewSecret(key)
			cfg.Providers[kind] = p
			logs := &syncBuffer{}
			reg := prometheus.NewRegistry()
			svc, err := New(cfg, Deps{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Registerer: reg, Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }, Rand: func() float64 { return 1 }})
			if err != nil {
				t.Fatal(err)
			}
			env := &testEnv{svc: svc, reg: reg}

			// HTTP, streamed and not.
			gw := httptest.NewServer(svc.Handler())
			defer gw.Close()
			for _, stream := range []bool{false, true} {
				fake.Push(providertest.Fault{Status: 401, EchoCredentials: true})
				resp := post(t, gw.URL, "", fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"x"}]}`, models[kind], stream))
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				eq(t, "HTTP status", resp.StatusCode, 401)
				if !strings.Contains(string(body), `"code":"unauthenticated"`) || !strings.Contains(string(body), "(HTTP 401)") {
					t.Errorf("HTTP body (stream %v): %s", stream, body)
				}
				if l := leaks(string(body), key); l != nil {
					t.Errorf("HTTP body (stream %v) carries the key %q: %s", stream, l, body)
				}
			}

			// The bus.
			nc, _ := startBusEnv(t, env)
			fake.Push(providertest.Fault{Status: 401, EchoCredentials: true})
			msg, err := nc.Request(bus.SubjectInferenceChat,
				fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"x"}]}`, models[kind]), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			berr, _ := bus.ReplyError(msg).(*bus.Error)
			if berr == nil {
				t.Fatalf("bus: want an error, got %s", msg.Data)
			}
			eq(t, "bus code", berr.Code, provider.CodeUnauthenticated)
			if l := leaks(berr.Message+string(msg.Data)+fmt.Sprint(msg.Header), key); l != nil {
				t.Errorf("bus error carries the key %q: %s %v", l, msg.Data, msg.Header)
			}

			// The error as a caller would log it, and what the service logged.
			fake.Push(providertest.Fault{Status: 401, EchoCredentials: true})
			_, err = svc.Chat(context.Background(), chatReq(models[kind], "x"))
			eq(t, "code", provider.CodeOf(err), provider.CodeUnauthenticated)
			svc.log.Error("chat failed", "err", err)
			if l := leaks(logs.String()+fmt.Sprintf("%v %+v %s", err, err, err), key); l != nil {
				t.Errorf("logs carry the key %q:\n%s", l, logs.String())
			}

			// The upstream did receive the key and did echo it: the test tests something.
			reqs := fake.Requests()
			if len(reqs) == 0 {
				t.Fatal("no upstream request")
			}
			if !strings.Contains(fmt.Sprint(reqs[0].Header), key) {
				t.Fatalf("the upstream never saw the key: %v", reqs[0].Header)
			}
		})
	}
}
