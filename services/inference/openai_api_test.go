package inference

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/services/inference/providertest"
)

func post(t *testing.T, url, auth, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// readSSE returns the data payloads of an SSE body.
func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

const weatherTool = `"tools":[{"type":"function","function":{"name":"get_weather","description":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`

func TestChatCompletionsNonStreaming(t *testing.T) {
	env := newTestService(t, Defaults(), nil)
	srv := httptest.NewServer(env.svc.Handler())
	defer srv.Close()
	cases := []struct {
		name, body string
		status     int
		check      func(t *testing.T, v map[string]any)
	}{
		{"text", `{"model":"mock","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}]}`, 200,
			func(t *testing.T, v map[string]any) {
				ch := v["choices"].([]any)[0].(map[string]any)
				eq(t, "content", ch["message"].(map[string]any)["content"].(string), "Mock reply to: hello")
				eq(t, "finish", ch["finish_reason"].(string), "stop")
				eq(t, "object", v["object"].(string), "chat.completion")
				if v["usage"].(map[string]any)["prompt_tokens"].(float64) == 0 {
					t.Error("no usage")
				}
			}},
		{"content parts", `{"model":"mock","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`, 200,
			func(t *testing.T, v map[string]any) {
				ch := v["choices"].([]any)[0].(map[string]any)
				eq(t, "content", ch["message"].(map[string]any)["content"].(string), "Mock reply to: ab")
			}},
		{"tool call", `{"model":"mock","messages":[{"role":"user","content":"call get_weather {\"city\":\"Oslo\"}"}],` + weatherTool + `}`, 200,
			func(t *testing.T, v map[string]any) {
				ch := v["choices"].([]any)[0].(map[string]any)
				eq(t, "finish", ch["finish_reason"].(string), "tool_calls")
				tc := ch["message"].(map[string]any)["tool_calls"].([]any)[0].(map[string]any)
				eq(t, "type", tc["type"].(string), "function")
				fn := tc["function"].(map[string]any)
				eq(t, "name", fn["name"].(string), "get_weather")
				eq(t, "args", fn["arguments"].(string), `{"city":"Oslo"}`)
				if !strings.HasPrefix(tc["id"].(string), "call_") {
					t.Errorf("id %v", tc["id"])
				}
			}},
		{"tool result", `{"model":"mock","messages":[{"role":"user","content":"get_weather"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"sunny"}],` + weatherTool + `}`, 200,
			func(t *testing.T, v map[string]any) {
				ch := v["choices"].([]any)[0].(map[string]any)
				eq(t, "content", ch["message"].(map[string]any)["content"].(string), "Tool get_weather returned: sunny.")
			}},
		{"bad json", `{"model":`, 400, func(t *testing.T, v map[string]any) {
			eq(t, "code", v["error"].(map[string]any)["code"].(string), "invalid_request")
		}},
		{"no messages", `{"model":"mock","messages":[]}`, 400, nil},
		{"bad role", `{"model":"mock","messages":[{"role":"wizard","content":"x"}]}`, 400, nil},
		{"n=2", `{"model":"mock","n":2,"messages":[{"role":"user","content":"x"}]}`, 400, nil},
		{"unknown model", `{"model":"nope-1","messages":[{"role":"user","content":"x"}]}`, 404, func(t *testing.T, v map[string]any) {
			eq(t, "code", v["error"].(map[string]any)["code"].(string), "model_not_found")
		}},
		{"negative timeout", `{"model":"mock","mxp_timeout_ms":-1,"messages":[{"role":"user","content":"x"}]}`, 400, nil},
		{"temperature out of range", `{"model":"mock","temperature":3,"messages":[{"role":"user","content":"x"}]}`, 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, srv.URL, "", tc.body)
			defer resp.Body.Close()
			eq(t, "status", resp.StatusCode, tc.status)
			var v map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, v)
			}
		})
	}
}

func TestChatCompletionsStreaming(t *testing.T) {
	env := newTestService(t, Defaults(), nil)
	srv := httptest.NewServer(env.svc.Handler())
	defer srv.Close()

	resp := post(t, srv.URL, "", `{"model":"mock","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three"}]}`)
	defer resp.Body.Close()
	eq(t, "content type", resp.Header.Get("Content-Type"), "text/event-stream")
	events := readSSE(t, resp.Body)
	eq(t, "last", events[len(events)-1], "[DONE]")
	var text strings.Builder
	var finish string
	var usage map[string]any
	for i, e := range events[:len(events)-1] {
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Role    string  `json:"role"`
					Content *string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage map[string]any `json:"usage"`
		}
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		eq(t, "object", c.Object, "chat.completion.chunk")
		if i == 0 && (len(c.Choices) == 0 || c.Choices[0].Delta.Role != "assistant") {
			t.Errorf("first chunk has no assistant role: %s", e)
		}
		if len(c.Choices) > 0 {
			if c.Choices[0].Delta.Content != nil {
				text.WriteString(*c.Choices[0].Delta.Content)
			}
			if c.Choices[0].FinishReason != nil {
				finish = *c.Choices[0].FinishReason
			}
		}
		if c.Usage != nil {
			usage = c.Usage
		}
	}
	eq(t, "text", text.String(), "Mock reply to: one two three")
	eq(t, "finish", finish, "stop")
	if usage == nil || usage["completion_tokens"].(float64) != 6 {
		t.Errorf("usage %v", usage)
	}

	// Streamed tool calls arrive as tool_calls deltas.
	resp2 := post(t, srv.URL, "", `{"model":"mock","stream":true,"messages":[{"role":"user","content":"get_weather {\"city\":\"Rome\"}"}],`+weatherTool+`}`)
	defer resp2.Body.Close()
	all := strings.Join(readSSE(t, resp2.Body), "\n")
	for _, want := range []string{`"name":"get_weather"`, `"arguments":"{\"city\":\"Rome\"}"`, `"finish_reason":"tool_calls"`, "[DONE]"} {
		if !strings.Contains(all, want) {
			t.Errorf("stream lacks %s:\n%s", want, all)
		}
	}
}

func TestStreamErrorMidway(t *testing.T) {
	fake := providertest.New(providertest.OpenAI, providertest.Reply{Words: []string{"a ", "b ", "c ", "d"}})
	defer fake.Close()
	fake.Push(providertest.Fault{ResetAfter: 3})
	env := newTestService(t, fakeConfig(KindOpenAI, fake.URL, Resilience{}), nil)
	srv := httptest.NewServer(env.svc.Handler())
	defer srv.Close()
	resp := post(t, srv.URL, "", `{"model":"gpt-x","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	defer resp.Body.Close()
	events := readSSE(t, resp.Body)
	last := events[len(events)-1]
	if !strings.Contains(last, `"error"`) || !strings.Contains(last, "provider_error") {
		t.Errorf("last event %s, want an error event", last)
	}
	eq(t, "upstream calls", len(fake.Requests()), 1)
}

func TestClientKeysAndNoForwarding(t *testing.T) {
	fake := providertest.New(providertest.OpenAI, okReply)
	defer fake.Close()
	cfg := fakeConfig(KindOpenAI, fake.URL, Resilience{})
	p := cfg.Providers[KindOpenAI]
	p.APIKey = security.NewSecret("sk-upstream")
	cfg.Providers[KindOpenAI] = p
	cfg.ClientKeys = []security.Secret{security.NewSecret("mesh-client-key")}
	env := newTestService(t, cfg, nil)
	srv := httptest.NewServer(env.svc.Handler())
	defer srv.Close()
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`

	for _, key := range []string{"", "wrong"} {
		resp := post(t, srv.URL, key, body)
		resp.Body.Close()
		eq(t, "status for key "+key, resp.StatusCode, 401)
	}
	resp := post(t, srv.URL, "mesh-client-key", body)
	resp.Body.Close()
	eq(t, "status", resp.StatusCode, 200)
	reqs := fake.Requests()
	eq(t, "upstream calls", len(reqs), 1)
	eq(t, "upstream auth", reqs[0].Header.Get("Authorization"), "Bearer sk-upstream")
	for k, v := range reqs[0].Header {
		if strings.Contains(strings.Join(v, ","), "mesh-client-key") {
			t.Errorf("client key forwarded in %s", k)
		}
	}
	eq(t, "rejected metric", metricValue(t, env.reg, "mxp_inference_rejected_total", map[string]string{"code": "unauthenticated"}), 2.0)
}

func TestModelsEndpoint(t *testing.T) {
	cfg := Defaults()
	cfg.Aliases = map[string]string{"fast": "mock"}
	cfg.Models["gpt-4o"] = ModelConfig{} // routed by prefix to openai, which is off: not listed
	env := newTestService(t, cfg, nil)
	srv := httptest.NewServer(env.svc.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string `json:"id"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&v)
	eq(t, "object", v.Object, "list")
	var ids []string
	for _, m := range v.Data {
		ids = append(ids, m.ID+"@"+m.OwnedBy)
	}
	eq(t, "models", strings.Join(ids, ","), "fast@mock,mock@mock")
}

func FuzzParseOpenAIRequest(f *testing.F) {
	f.Add([]byte(`{"model":"mock","messages":[{"role":"user","content":"hi"}],"stop":"x","tool_choice":"auto"}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"tool_choice":{"type":"function","function":{"name":"f"}},"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _, _, err := ParseOpenAIRequest(body)
		if err == nil && req == nil {
			t.Fatal("nil request without error")
		}
		if err == nil {
			validate(req)
		}
	})
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "tab\tnl\nret\r", "\x00\x1f", "<a&b>", "héllo 你好", "\u2028\u2029", "bad\xffutf8"} {
		want, _ := json.Marshal(s)
		eq(t, s, string(appendJSONString(nil, s)), string(want))
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("hello \"world\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}

func TestRejectedMetric(t *testing.T) {
	env := newTestService(t, Defaults(), nil)
	srv := httptest.NewServer(env.svc.Handler())
	defer srv.Close()
	for _, body := range []string{`{`, `{"model":"mock","messages":[]}`, `{"model":"nope","messages":[{"role":"user","content":"x"}]}`} {
		resp := post(t, srv.URL, "", body)
		resp.Body.Close()
	}
	eq(t, "parse", metricValue(t, env.reg, "mxp_inference_rejected_total", map[string]string{"api": "http", "code": "invalid_request"}), 1.0)
	eq(t, "validate", metricValue(t, env.reg, "mxp_inference_rejected_total", map[string]string{"api": "call", "code": "invalid_request"}), 1.0)
	eq(t, "route", metricValue(t, env.reg, "mxp_inference_rejected_total", map[string]string{"api": "call", "code": "model_not_found"}), 1.0)
}
