package provider

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mxp-mesh/mesh/services/inference/internal/openai"
)

var fastSeeds = []string{
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
	`{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":0}}}`,
	`{"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":"h\u00e9","refusal":null}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"line\n"}}]}`,
	`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":""}}]}}]}`,
	`{"Choices":[{"index":0,"delta":{"content":"x"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"a"}}],"choices":[]}`,
	`{"error":{"message":"boom","type":"server_error"}}`,
	`{"choices":[{"index":0.5}]}`,
	`{"choices":null,"usage":{"prompt_tokens":1e2}}`,
	`{"choices":[null,{"delta":null,"finish_reason":null}]} `,
	`{"choices":[{"index":0,"delta":{"content":"x"}}]} x`,
	`{"choices":[{"index":0,"delta":{"content":"\ud83d\ude00 \ud800x \udc00\ud800\udc00 \ud800\u0041 \/\b\f\r\t\"\\"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"bad \x"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"short \u12"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"é\né"}}]}`,
}

func slowDecode(data []byte) (openai.Chunk, error) {
	var c openai.Chunk
	err := json.Unmarshal(data, &c)
	return c, err
}

// normalise treats a nil and an empty Choices slice alike (the fast path reuses memory)
// and clears what the fast path skips (decodeOpenAIChunkFast: the chunk's id, object,
// created and model, a delta's role, usage's total_tokens).
func normalise(c openai.Chunk) openai.Chunk {
	if len(c.Choices) == 0 {
		c.Choices = nil
	}
	c.ID, c.Object, c.Created, c.Model = "", "", 0, ""
	for i := range c.Choices {
		c.Choices[i].Delta.Role = ""
	}
	if c.Usage != nil {
		u := *c.Usage
		u.TotalTokens = 0
		c.Usage = &u
	}
	return c
}

func TestOpenAIFastDecodeAgrees(t *testing.T) {
	for i, s := range fastSeeds {
		var fast openai.Chunk
		ok := decodeOpenAIChunkFast([]byte(s), &fast)
		slow, err := slowDecode([]byte(s))
		if !ok {
			if i < 5 || i == 13 || i == 16 {
				t.Errorf("the fast path refused a common shape: %s", s)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: fast path accepted what json rejects (%v)", s, err)
			continue
		}
		if !reflect.DeepEqual(normalise(fast), normalise(slow)) {
			t.Errorf("%s:\nfast %+v\nslow %+v", s, fast, slow)
		}
	}
}

func FuzzOpenAIFastDecode(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast openai.Chunk
		if !decodeOpenAIChunkFast(data, &fast) {
			return
		}
		slow, err := slowDecode(data)
		if err != nil {
			t.Fatalf("fast path accepted %q, json rejects it: %v", data, err)
		}
		if !reflect.DeepEqual(normalise(fast), normalise(slow)) {
			t.Fatalf("%q:\nfast %+v\nslow %+v", data, fast, slow)
		}
	})
}

var anthropicFastSeeds = []string{
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
	`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}`,
	`{"type":"content_block_stop","index":0}`,
	`{"type": "ping"}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u00e9\n\ud83d\ude00"}} `,
	// Left to json.Unmarshal, or rejected by it:
	`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`,
	`{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":25,"output_tokens":1}}}`,
	`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
	`{"Type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`,
	`{"type":"content_block_delta","type":"ping"}`,
	`{"type":"content_block_delta","index":1.5,"delta":{"type":"text_delta","text":"x"}}`,
	`{"type":"content_block_delta","index":0,"delta":null}`,
	`{"type":"content_block_delta","index":0,"delta":{"text":5}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"bad \xff"}}`,
	`{"type":"content_block_delta"} trailing`,
}

func TestAnthropicFastDecodeAgrees(t *testing.T) {
	agreesOnSeeds(t, anthropicFastSeeds, 5, decodeAnthropicEventFast)
}

func FuzzAnthropicFastDecode(f *testing.F) {
	fuzzAgreement(f, anthropicFastSeeds, decodeAnthropicEventFast)
}

var ollamaFastSeeds = []string{
	`{"model":"llama3.2","created_at":"2024-07-22T20:33:28.123648Z","message":{"role":"assistant","content":"Hello"},"done":false}`,
	`{"model":"llama3.2","created_at":"2024-07-22T20:33:28Z","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":26,"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}`,
	`{"message":{"content":"\u00e9\n\ud83d\ude00 \"q\""},"done":false} `,
	`{"error":"model not found"}`,
	`{"message":null,"done":null,"eval_count":null}`,
	// Left to json.Unmarshal, or rejected by it:
	`{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},"done":false}`,
	`{"Message":{"content":"x"}}`,
	`{"done":true,"done":false}`,
	`{"eval_count":1.5}`,
	`{"done":"yes"}`,
	`{"message":{"content":5}}`,
	`{"message":{"content":"bad \xff"}}`,
	`{"done":false} trailing`,
}

func TestOllamaFastDecodeAgrees(t *testing.T) {
	agreesOnSeeds(t, ollamaFastSeeds, 5, decodeOllamaChunkFast)
}

func FuzzOllamaFastDecode(f *testing.F) {
	fuzzAgreement(f, ollamaFastSeeds, decodeOllamaChunkFast)
}

var geminiFastSeeds = []string{
	`{"candidates":[{"content":{"parts":[{"text":"Hello"}],"role":"model"},"index":0,"safetyRatings":[{"category":"HARM_CATEGORY_HATE_SPEECH","probability":"NEGLIGIBLE"}]}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1,"totalTokenCount":6},"modelVersion":"gemini-2.0-flash"}`,
	`{"candidates":[{"content":{"parts":[{"text":" world"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":2,"thoughtsTokenCount":7}}`,
	`{"candidates":[{"content":{"parts":[{"text":"thinking","thought":true},{"text":"\u00e9\n"}]}}]} `,
	`{"candidates":[],"usageMetadata":null}`,
	`{"candidates":[{"content":{"parts":[]},"finishReason":null}],"responseId":"x"}`,
	// Left to json.Unmarshal, or rejected by it:
	`{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":1}}}]}}]}`,
	`{"promptFeedback":{"blockReason":"SAFETY"}}`,
	`{"error":{"message":"boom","status":"UNAVAILABLE"}}`,
	`{"candidates":[null]}`,
	`{"candidates":[{"content":{"parts":[null]}}]}`,
	`{"Candidates":[]}`,
	`{"candidates":[{"content":{"parts":[{"text":5}]}}]}`,
	`{"usageMetadata":{"promptTokenCount":1.5}}`,
	`{"candidates":[{"content":{"parts":[{"thought":"yes"}]}}]}`,
	`{"candidates":[]} x`,
}

func TestGeminiFastDecodeAgrees(t *testing.T) {
	agreesOnSeeds(t, geminiFastSeeds, 5, decodeGeminiChunkFast)
}

func FuzzGeminiFastDecode(f *testing.F) {
	fuzzAgreement(f, geminiFastSeeds, decodeGeminiChunkFast)
}

// agreesOnSeeds checks the fast decoder against json.Unmarshal on every seed; the first
// common seeds are shapes it must accept.
func agreesOnSeeds[T any](t *testing.T, seeds []string, common int, fast func([]byte, *T) bool) {
	for i, s := range seeds {
		if accepted := agreesWithJSON(t, []byte(s), fast); i < common && !accepted {
			t.Errorf("the fast path refused a common shape: %s", s)
		}
	}
}

func fuzzAgreement[T any](f *testing.F, seeds []string, fast func([]byte, *T) bool) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { agreesWithJSON(t, data, fast) })
}

// agreesWithJSON compares a fast decoder with json.Unmarshal on data: whatever the fast
// path accepts, json decodes the same way. It reports whether the fast path accepted.
func agreesWithJSON[T any](t *testing.T, data []byte, fast func([]byte, *T) bool) bool {
	var got T
	if !fast(data, &got) {
		return false
	}
	var want T
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("fast path accepted %q, json rejects it: %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nfast %+v\njson %+v", data, got, want)
	}
	return true
}
