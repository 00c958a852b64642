package inference

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/services/inference/internal/openai"
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
			strings.Count(v.Error.Message, "model_not_found") > 1 {
			t.Errorf("model %s: %d %+v\nwant message containing %q", tc.model, resp.StatusCode, v, tc.want)
		}
	}
}
