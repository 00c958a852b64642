package inference

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseHostedModel(t *testing.T) {
	for _, tc := range []struct {
		in, agent, model string
		ok               bool
	}{
		{"mxp/host/echo", "host", "echo", true},
		{"host/echo", "host", "echo", true},
		{"mxp/host/meta/llama3.2:1b", "host", "meta/llama3.2:1b", true}, // the model keeps its own '/'
		{"mxp/Host Name/Echo", "Host Name", "Echo", true},               // the rules of names are the mesh's
		{"mxp/host", "", "", false},
		{"mxp//echo", "", "", false},
		{"mxp/host/", "", "", false},
		{"mxp/", "", "", false},
		{"", "", "", false},
	} {
		agent, model, err := ParseHostedModel(tc.in)
		if (err == nil) != tc.ok || agent != tc.agent || model != tc.model {
			t.Errorf("ParseHostedModel(%.40q) = %q, %q, %v; want %q, %q, ok %v", tc.in, agent, model, err, tc.agent, tc.model, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrHostedModelName) {
			t.Errorf("ParseHostedModel(%.40q): %v is not ErrHostedModelName", tc.in, err)
		}
	}
	if got := HostedCapability("echo"); got != "model.echo" {
		t.Fatalf("HostedCapability = %q", got)
	}
}

// FuzzParseHostedModel: whatever the input, a name that parses splits back into itself,
// with an agent name free of '/' and a model of its own.
func FuzzParseHostedModel(f *testing.F) {
	for _, s := range []string{"mxp/host/echo", "host/echo", "mxp//", "mxp/a/b/c", "mxp/\x00/m", "mxp/host/ECHO"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		agent, model, err := ParseHostedModel(in)
		if err != nil {
			if !errors.Is(err, ErrHostedModelName) || agent != "" || model != "" {
				t.Fatalf("%q: %q, %q, %v", in, agent, model, err)
			}
			return
		}
		if agent+"/"+model != strings.TrimPrefix(in, HostedPrefix) {
			t.Fatalf("%q split into %q and %q", in, agent, model)
		}
		if agent == "" || model == "" || strings.Contains(agent, "/") {
			t.Fatalf("%q: agent %q, model %q", in, agent, model)
		}
	})
}

// TestResponseChunks: a response streamed as its chunks folds back into itself.
func TestResponseChunks(t *testing.T) {
	for _, r := range []Response{
		{Text: "hello", FinishReason: FinishStop, Usage: Usage{InputTokens: 3, OutputTokens: 1}},
		{Refusal: "no", FinishReason: FinishRefusal},
		{ToolCalls: []ToolCall{{ID: "a", Name: "f", Arguments: `{"x":1}`}, {ID: "b", Name: "g", Arguments: `{}`}},
			FinishReason: FinishToolCalls, Usage: Usage{InputTokens: 9, OutputTokens: 4, Estimated: true}},
	} {
		var acc Accumulator
		for _, c := range r.Chunks() {
			acc.Add(c)
		}
		if got := acc.Response(); !reflect.DeepEqual(*got, r) {
			t.Errorf("folded %+v, want %+v", *got, r)
		}
	}
}
