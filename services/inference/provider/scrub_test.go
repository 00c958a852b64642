package provider_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

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
