package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeInference answers like the inference service's OpenAI-compatible API and records
// the request.
func fakeInference(t *testing.T, got *map[string]any, auth *string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		*auth = r.Header.Get("Authorization")
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, got)
		msgs := (*got)["messages"].([]any)
		prompt := msgs[len(msgs)-1].(map[string]any)["content"].(string)
		if prompt == "fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"message":"circuit breaker open","type":"api_error","code":"circuit_open"}}`)
			return
		}
		if (*got)["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, p := range []string{"Hel", "lo"} {
				io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"`+p+`"}}]}`+"\n\n")
			}
			io.WriteString(w, `data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`+"\n\n")
			io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`)
	}))
}

func TestInfer(t *testing.T) {
	var got map[string]any
	var auth string
	srv := fakeInference(t, &got, &auth)
	defer srv.Close()
	url := srv.URL + "/v1"
	dataDir := t.TempDir()
	if err := writeEdgeInfo(dataDir, EdgeInfo{HTTPAddr: srv.URL}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		args      []string
		code      int
		stdout    string
		stderrHas string
		checkBody func(t *testing.T)
	}{
		{"plain", []string{"--url", url, "--model", "mock", "--prompt", "hi", "--system", "be brief"}, 0, "Hello\n", "",
			func(t *testing.T) {
				if got["model"] != "mock" || len(got["messages"].([]any)) != 2 || got["stream"] != false {
					t.Errorf("request %v", got)
				}
			}},
		{"stream with usage", []string{"--url", url, "--prompt", "hi", "--stream", "--usage", "--api-key", "k1"}, 0, "Hello\n", "tokens: 3 in, 2 out",
			func(t *testing.T) {
				if auth != "Bearer k1" {
					t.Errorf("auth %q", auth)
				}
			}},
		{"typed error", []string{"--url", url, "--prompt", "fail"}, 1, "", "circuit_open", nil},
		{"url from the data directory", []string{"--data-dir", dataDir, "--prompt", "hi"}, 0, "Hello\n", "", nil},
		{"missing prompt", []string{"--url", url}, 2, "", "--prompt is required", nil},
		{"bad temperature", []string{"--url", url, "--prompt", "x", "--temperature", "hot"}, 2, "", "not a number", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := execute(context.Background(), append([]string{"infer"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if stdout.String() != tc.stdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.stdout)
			}
			if tc.stderrHas != "" && !strings.Contains(stderr.String(), tc.stderrHas) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderrHas)
			}
			if tc.checkBody != nil {
				tc.checkBody(t)
			}
		})
	}
}

// TestInferDefaultsToDev: with no --url, MXP_INFERENCE_URL or mesh in the data directory,
// infer tries mxp dev's default HTTP address (it named mxp-inference's 8086 while mxp dev
// serves 8080); when nothing answers it says where it tried and what to check.
func TestInferDefaultsToDev(t *testing.T) {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	root.children["dev"].Flags(fs)
	if want := "http://" + fs.Lookup("http-addr").DefValue + "/v1"; defaultInferenceURL != want {
		t.Fatalf("infer's default %s, mxp dev serves %s", defaultInferenceURL, want)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	t.Setenv("MXP_INFERENCE_URL", closed)
	code, _, errOut := runCLI(context.Background(), "infer", "--prompt", "hi", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "nothing answers at "+closed) || !strings.Contains(errOut, "check that the mesh is running") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestInferModelNotFound: on a real mxp dev, a model whose provider is off is reported
// once (the code was repeated: "model_not_found (HTTP 404): model_not_found: ...") with the
// variable that enables it.
func TestInferModelNotFound(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	dir := startDev(t)
	t.Setenv("MXP_INFERENCE_URL", "")
	for model, want := range map[string]string{
		"gpt-4o-mini": "mxp infer: model_not_found (HTTP 404): no enabled provider serves model \"gpt-4o-mini\": set OPENAI_API_KEY to enable the openai provider\n",
		// A hosted model no agent serves: the code was in the message too ("model_not_found
		// from mxp/foo/bar: ...").
		"mxp/foo/bar": "mxp infer: model_not_found (HTTP 404): mxp/foo/bar: no online agent named \"foo\" serves model \"bar\" (capability model.bar)\n",
	} {
		code, out, errOut := runCLI(context.Background(), "infer", "--model", model, "--prompt", "hi", "--data-dir", dir)
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%s: exit %d\nstdout %q\nstderr %q\nwant   %q", model, code, out, errOut, want)
		}
	}
}
