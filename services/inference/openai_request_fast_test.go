package inference

import (
	"reflect"
	"testing"
)

// requestSeeds are request bodies for the fast path's agreement with the general one.
// The first ones are the shapes it must accept.
var requestSeeds = []string{
	`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}`,
	`{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi \"there\"\n\u00e9"}],"temperature":0.2,"top_p":1,"max_tokens":100}`,
	`{"model":"m","messages":[{"role":"developer","content":"d"},{"role":"assistant","content":null},{"role":"tool","content":"42","tool_call_id":"call_1","name":"calc"}],"stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":7,"max_tokens":9,"user":"u-1","metadata":{"a":[1,{"b":null}]}}`,
	` {"model":"m","messages":[],"stream":false,"stream_options":null,"temperature":null} `,
	`{"model":"m","messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"tool","tool_call_id":"c","content":"-3C"}],"tools":[{"type":"function","function":{"name":"f","description":"weather","parameters":{"type":"object", "properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}},{"function":{"name":"g","parameters":null}},{"type":"function","function":{"name":"h"}}],"tool_choice":"auto","stop":["END",null],"mxp_context_budget":"drop","mxp_timeout_ms":5000,"mxp_first_token_timeout_ms":null}`,
	`{"model":"m","messages":[{"role":"user","content":"x","tool_calls":[{"id":"ignored"}]}],"stop":"END","tools":[],"tool_choice":null}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":[],"tools":null}`,
	// Shapes the general path must take:
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"parts"}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"f"}}}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"retrieval"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[null]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}`,
	`{"Model":"m","messages":[{"role":"user","content":"x"}]}`,
	`{"model":"m","model":"n","messages":[{"role":"user","content":"x"}]}`,
	`{"model":"m","messages":[{"role":"wizard","content":"x"}]}`,
	`{"model":"m","messages":[null]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}]} trailing`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1e2}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1e999}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}`,
	`{"model":5,"messages":[]}`,
	`{"model":"m","messages":[{"role":"user","content":"bad \xff utf-8"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x","Role":"system"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":null,"other":1}}`,
	`null`,
	`{"model":"m","messages":[{"role":"user","content":"\ud83d\ude00 \ud800"}],"mxp_timeout_ms":5}`,
}

// checkFastRequest compares the fast path with the general one on body: whatever the
// fast path accepts, the general path accepts the same way.
func checkFastRequest(t *testing.T, body []byte) bool {
	fast, fs, fu, ok := parseOpenAIRequestFast(body)
	if !ok {
		return false
	}
	slow, ss, su, err := parseOpenAIRequest(body)
	if err != nil {
		t.Fatalf("fast path accepted %q, the general path rejects it: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) || fs != ss || fu != su {
		t.Fatalf("%q:\nfast %+v stream=%v usage=%v\nslow %+v stream=%v usage=%v", body, fast, fs, fu, slow, ss, su)
	}
	return true
}

func TestParseOpenAIRequestFastAgrees(t *testing.T) {
	for i, s := range requestSeeds {
		if accepted := checkFastRequest(t, []byte(s)); i < 7 && !accepted {
			t.Errorf("the fast path refused a common shape: %s", s)
		}
	}
}

func FuzzParseOpenAIRequestFast(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastRequest(t, body) })
}
