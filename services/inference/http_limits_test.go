package inference

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/health"
	cmetrics "github.com/mxp-mesh/mesh/pkg/common/metrics"
)

// gatewayWithLimits serves the OpenAI-compatible API on a metrics.Server with lim, as
// mxp-inference does, in front of a mock model that takes tokenDelay per token.
func gatewayWithLimits(t *testing.T, lim cmetrics.ServerLimits, tokenDelay time.Duration) (string, *testEnv) {
	t.Helper()
	cfg := Defaults()
	cfg.Providers[KindMock] = ProviderConfig{Kind: KindMock, TokenDelay: tokenDelay}
	env := newTestService(t, cfg, nil)
	srv := cmetrics.NewServer(cmetrics.ServerConfig{Addr: "127.0.0.1:0", Limits: lim}, cmetrics.NewRegistry("inference"), health.NewChecker(nil))
	env.svc.Routes(srv.Router())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return "http://" + srv.Addr(), env
}

// A completion that takes several write timeouts (a slow model), streamed and not, is
// delivered whole: the handler moves the write deadline instead of being cut off by it.
func TestLongCompletionOutlivesWriteTimeout(t *testing.T) {
	lim := cmetrics.ServerLimits{WriteTimeout: 150 * time.Millisecond}
	url, _ := gatewayWithLimits(t, lim, 30*time.Millisecond)
	words := strings.Repeat("word ", 20) // ~25 tokens at 30 ms: 5 write timeouts
	body := fmt.Sprintf(`{"model":"mock","stream":%%v,"messages":[{"role":"user","content":%q}]}`, words)

	resp := post(t, url, "", fmt.Sprintf(body, true))
	events, done := 0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events++
			done = d == "[DONE]"
		}
	}
	resp.Body.Close()
	if !done || events < 20 {
		t.Errorf("SSE stream cut off: %d events, [DONE] %v, %v", events, done, sc.Err())
	}

	resp = post(t, url, "", fmt.Sprintf(body, false))
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	err := json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || len(out.Choices) != 1 || !strings.Contains(out.Choices[0].Message.Content, words) {
		t.Errorf("non-streamed completion: %v %+v", err, out)
	}
}

// A request body still arriving at the read timeout gets 408 with code timeout, is
// counted, and its connection is closed.
func TestSlowBodyGets408(t *testing.T) {
	url, env := gatewayWithLimits(t, cmetrics.ServerLimits{ReadTimeout: 200 * time.Millisecond}, 0)
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte per 20 ms until the server closes
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte{' '}); err != nil {
					return
				}
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body) // to EOF: the server closes the connection
	resp.Body.Close()
	eq(t, "status", resp.StatusCode, http.StatusRequestTimeout)
	if !strings.Contains(string(b), `"code":"timeout"`) {
		t.Errorf("body: %s", b)
	}
	eq(t, "rejected metric", metricValue(t, env.reg, "mxp_inference_rejected_total", map[string]string{"code": "timeout"}), 1.0)
}
