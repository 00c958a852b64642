package inference

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/services/inference/internal/openai"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// TestUnknownV1PathIsOpenAIError: a /v1 path the mesh does not serve answers 404 with an
// OpenAI error body (clients parse it), not a plain-text 404; served paths are untouched.
func TestUnknownV1PathIsOpenAIError(t *testing.T) {
	env := newTestService(t, Defaults(), nil)
	srv := httptest.NewServer(env.svc.Handler())
	defer srv.Close()
	for _, path := range []string{"/v1/embeddings", "/v1/completions", "/v1/audio/speech"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{"model":"mock","input":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		var v openai.ErrorBody
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || err != nil || resp.Header.Get("Content-Type") != "application/json" ||
			v.Error.Type != "invalid_request_error" || v.Error.Code != "unknown_url" ||
			!strings.Contains(v.Error.Message, "POST "+path) || !strings.Contains(v.Error.Message, "POST /v1/chat/completions") {
			t.Errorf("POST %s: %d %q %v %+v", path, resp.StatusCode, resp.Header.Get("Content-Type"), err, v)
		}
	}
	if resp, err := http.Get(srv.URL + "/v1/models"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/models: %v %v", resp, err)
	}
	eq(t, "rejected", metricValue(t, env.reg, "mxp_inference_rejected_total", map[string]string{"api": "http", "code": "unknown_url"}), 3.0)
}

// TestModelNotFoundNamesTheKey: a model no enabled provider serves says which variable
// would enable its provider, once, without the code repeated in the message.
func TestModelNotFoundNamesTheKey(t *testing.T) {
	env := newTestService(t, Defaults(), nil)
	srv := httptest.NewServer(env.svc.Handler())
	defer srv.Close()
	for _, tc := range []struct{ model, want string }{
		{"gpt-4o-mini", `no enabled provider serves model "gpt-4o-mini": set OPENAI_API_KEY to enable the openai provider`},
		{"claude-3-5-haiku", `set ANTHROPIC_API_KEY to enable the anthropic provider`},
		{"gemini-2.0-flash", `set GEMINI_API_KEY to enable the gemini provider`},
		{"ollama/llama3", `set OLLAMA_HOST to enable the ollama provider`},
		{"zzz", `no enabled provider serves model "zzz" (served: mock, mock*`},
	} {
		resp := post(t, srv.URL, "", `{"model":"`+tc.model+`","messages":[{"role":"user","content":"x"}]}`)
		var v openai.ErrorBody
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || v.Error.Code != "model_not_found" || !strings.Contains(v.Error.Message, tc.want) ||
			strings.Contains(v.Error.Message, "model_not_found") {
			t.Errorf("model %s: %d %+v\nwant message containing %q", tc.model, resp.StatusCode, v, tc.want)
		}
	}
}

// TestErrorBodyMessageHasNoCode: the HTTP error body's message is the error without its
// code (the code is its own field): a hosted model no agent serves said
// "model_not_found from mxp/foo/bar: ..." next to "code":"model_not_found".
func TestErrorBodyMessageHasNoCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&provider.Error{Code: provider.CodeModelNotFound, Provider: "mxp", Model: "foo/bar", Message: "no online agent named \"foo\""},
			"mxp/foo/bar: no online agent named \"foo\""},
		{&provider.Error{Code: provider.CodeRateLimited, Provider: "openai", Model: "gpt-x", Status: 429, Message: "slow down"},
			"openai/gpt-x (HTTP 429): slow down"},
		{&provider.Error{Code: provider.CodeOverloaded}, "overloaded"},
	} {
		b := errorBody(tc.err)
		if b.Error.Message != tc.want || b.Error.Code != string(provider.AsError(tc.err).Code) {
			t.Errorf("%v: body %+v, want message %q", tc.err, b, tc.want)
		}
	}
}
