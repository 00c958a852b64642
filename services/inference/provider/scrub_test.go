package provider_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// fuzzKey is registered as a provider key for the fuzz targets below.
const fuzzKey = "fuzz-provider-key-4242"

// FuzzStatusError: whatever an upstream answers (status, body), the error we pass on has
// one of our codes, no registered key in any spelling, and a bounded message.
func FuzzStatusError(f *testing.F) {
	provider.NewOpenAI(provider.HTTPConfig{APIKey: fuzzKey}) // registers the key, as every adapter does
	f.Add(401, `{"error":{"message":"Incorrect API key provided: `+fuzzKey+`"}}`)
	f.Add(400, "GET /v1?key="+url.QueryEscape(fuzzKey)+"\nAuthorization: Bearer "+fuzzKey)
	f.Add(529, "\x00\xff overloaded")
	f.Fuzz(func(t *testing.T, status int, body string) {
		e := provider.StatusError("openai", status, http.Header{}, body)
		if e.Code == "" {
			t.Fatalf("no code for status %d", status)
		}
		msg := e.Error()
		if strings.Contains(msg, fuzzKey) || strings.Contains(msg, url.QueryEscape(fuzzKey)) {
			t.Fatalf("key in %q", msg)
		}
		if len(e.Message) > provider.MaxUpstreamExcerpt+len("…") && e.Message != http.StatusText(status) {
			t.Fatalf("message of %d bytes", len(e.Message))
		}
		if !utf8.ValidString(e.Message) {
			t.Fatalf("invalid UTF-8 %q", e.Message)
		}
	})
}

// The key is registered by constructing an adapter, and removed from an error however
// the upstream spelled it.
func TestStatusErrorScrubsTheKey(t *testing.T) {
	provider.NewAnthropic(provider.HTTPConfig{APIKey: fuzzKey})
	for _, body := range []string{
		"x-api-key: " + fuzzKey,
		`{"message":"key \"` + fuzzKey + `\" is invalid"}`,
		"?key=" + url.QueryEscape(fuzzKey),
		strings.Repeat("long ", 100) + fuzzKey,
	} {
		e := provider.StatusError("anthropic", 401, http.Header{}, body)
		eqCode(t, e.Code, provider.CodeUnauthenticated)
		if strings.Contains(e.Error(), fuzzKey) || len(e.Message) > provider.MaxUpstreamExcerpt+len("…") {
			t.Errorf("%q -> %q", body, e.Error())
		}
		if !strings.Contains(e.Error(), "(HTTP 401)") {
			t.Errorf("no status in %q", e.Error())
		}
	}
	if got := security.Scrub(fuzzKey); got != security.Redacted {
		t.Errorf("key not registered: %q", got)
	}
}

func eqCode(t *testing.T, got, want provider.Code) {
	t.Helper()
	if got != want {
		t.Errorf("code %s, want %s", got, want)
	}
}

// A stream's error event carries the upstream's own text. Whatever it holds (10 KB, a
// credential-shaped token, a registered key, control characters), the error passed on
// keeps an excerpt: bounded, one line, the tokens blanked. The old adapters passed the
// text on whole.
func TestStreamErrorEventsAreExcerpted(t *testing.T) {
	provider.NewOpenAI(provider.HTTPConfig{APIKey: fuzzKey})
	q := hostileErrorText
	for _, tc := range []struct {
		name   string
		stream func(io.ReadCloser) api.Stream
		body   string
		code   provider.Code
	}{
		{"openai", provider.NewOpenAIStream, openAIErrorEvent(q), provider.CodeProviderError},
		{"anthropic", provider.NewAnthropicStream, anthropicErrorEvent(q), provider.CodeOverloaded},
		{"gemini", provider.NewGeminiStream, geminiErrorEvent(q), provider.CodeProviderError},
		{"ollama", provider.NewOllamaStream, ollamaErrorEvent(q), provider.CodeProviderError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := provider.Collect(tc.stream(io.NopCloser(strings.NewReader(tc.body))))
			e := provider.AsError(err)
			if e == nil {
				t.Fatal("no error from a stream error event")
			}
			eqCode(t, e.Code, tc.code)
			checkExcerpt(t, e.Message)
			for _, secret := range []string{hostileToken, "abcdefghijklmnop", fuzzKey} {
				if strings.Contains(e.Error(), secret) {
					t.Errorf("%q passed on in %q", secret, e.Error())
				}
			}
			if !strings.HasPrefix(e.Message, "upstream failed for") {
				t.Errorf("the upstream's text is lost: %q", e.Message)
			}
		})
	}
}

// hostileToken is credential-shaped; hostileErrorText is a JSON string of 10 KB holding
// it, a bearer token, control characters and the registered fuzzKey.
const hostileToken = "sk-proj-Abc123Def456Ghi789Jkl012"

var hostileErrorText = func() string {
	q, _ := json.Marshal("upstream failed for " + hostileToken + " \x1b[31mBearer abcdefghijklmnop\x07\r\nkey " +
		fuzzKey + " " + strings.Repeat("x", 10<<10))
	return string(q)
}()

// The error events of each wire format, with q (a JSON string) as the upstream's text.
func openAIErrorEvent(q string) string {
	return `data: {"error":{"message":` + q + `,"type":"server_error"}}` + "\n\n"
}

func anthropicErrorEvent(q string) string {
	return "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":" + q + "}}\n\n"
}

func geminiErrorEvent(q string) string { return `data: {"error":{"message":` + q + `}}` + "\n\n" }

func ollamaErrorEvent(q string) string { return `{"error":` + q + "}\n" }

// checkExcerpt fails when msg is not an excerpt: longer than MaxUpstreamExcerpt (and
// its "…"), or holding a control character or invalid UTF-8.
func checkExcerpt(t *testing.T, msg string) {
	t.Helper()
	if len(msg) > provider.MaxUpstreamExcerpt+len("…") {
		t.Errorf("message of %d bytes: %.80q…", len(msg), msg)
	}
	if !utf8.ValidString(msg) {
		t.Errorf("invalid UTF-8 in %q", msg)
	}
	if i := strings.IndexFunc(msg, unicode.IsControl); i >= 0 {
		t.Errorf("control character %q in %q", msg[i], msg)
	}
}
