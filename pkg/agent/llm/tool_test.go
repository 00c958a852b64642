package llm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/agent"
)

type weatherArgs struct {
	City  string `json:"city" desc:"city name" mxp:"minLength=1"`
	Units string `json:"units,omitempty" enum:"metric,imperial"`
	Days  int    `json:"days,omitempty" mxp:"min=1,max=7"`
}

type weather struct {
	City  string  `json:"city"`
	TempC float64 `json:"temp_c"`
}

func newWeatherTool(t testing.TB, runs *atomic.Int32) *Tool {
	t.Helper()
	tool, err := NewTool("weather", "current weather for a city",
		func(ctx context.Context, a weatherArgs) (weather, error) {
			runs.Add(1)
			switch a.City {
			case "nowhere":
				return weather{}, agent.Errorf(agent.CodeNotFound, "no city %q", a.City)
			case "boom":
				panic("sensor exploded")
			}
			return weather{City: a.City, TempC: 21.5}, nil
		}, WithCapabilities("weather.read"))
	if err != nil {
		t.Fatal(err)
	}
	return tool
}

func TestToolCall(t *testing.T) {
	var runs atomic.Int32
	tool := newWeatherTool(t, &runs)
	tests := []struct {
		name     string
		args     string
		want     string
		wantCode agent.Code
		ran      bool
	}{
		{"ok", `{"city":"Oslo"}`, `{"city":"Oslo","temp_c":21.5}`, "", true},
		{"all fields", `{"city":"Oslo","units":"metric","days":3}`, `{"city":"Oslo","temp_c":21.5}`, "", true},
		{"missing required", `{}`, "", agent.CodeInvalidArgument, false},
		{"empty means {}", ``, "", agent.CodeInvalidArgument, false},
		{"wrong type", `{"city":5}`, "", agent.CodeInvalidArgument, false},
		{"enum", `{"city":"Oslo","units":"kelvin"}`, "", agent.CodeInvalidArgument, false},
		{"max", `{"city":"Oslo","days":8}`, "", agent.CodeInvalidArgument, false},
		{"minLength", `{"city":""}`, "", agent.CodeInvalidArgument, false},
		{"unknown field", `{"city":"Oslo","x":1}`, "", agent.CodeInvalidArgument, false},
		{"not json", `{"city":`, "", agent.CodeInvalidArgument, false},
		{"not an object", `[1]`, "", agent.CodeInvalidArgument, false},
		{"integer as float", `{"city":"Oslo","days":2.5}`, "", agent.CodeInvalidArgument, false},
		{"tool error", `{"city":"nowhere"}`, "", agent.CodeNotFound, true},
		{"panic", `{"city":"boom"}`, "", agent.CodeInternal, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runs.Load()
			out, err := tool.Call(context.Background(), json.RawMessage(tt.args))
			if ran := runs.Load() != before; ran != tt.ran {
				t.Fatalf("function ran = %v, want %v", ran, tt.ran)
			}
			if tt.wantCode != "" {
				if agent.CodeOf(err) != tt.wantCode {
					t.Fatalf("err = %v (code %q), want code %q", err, agent.CodeOf(err), tt.wantCode)
				}
				return
			}
			if err != nil || string(out) != tt.want {
				t.Fatalf("Call = %s, %v; want %s", out, err, tt.want)
			}
		})
	}
}

func TestToolSpecAndCanceledContext(t *testing.T) {
	var runs atomic.Int32
	tool := newWeatherTool(t, &runs)
	spec := tool.Spec()
	if spec.Name != "weather" || spec.Description == "" || len(spec.Capabilities) != 1 || spec.Capabilities[0] != "weather.read" {
		t.Fatalf("spec = %+v", spec)
	}
	if !strings.Contains(string(spec.Parameters), `"city"`) {
		t.Fatalf("parameters = %s", spec.Parameters)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tool.Call(ctx, json.RawMessage(`{"city":"Oslo"}`)); !errors.Is(err, context.Canceled) || runs.Load() != 0 {
		t.Fatalf("canceled call: err = %v, runs = %d", err, runs.Load())
	}
}

func TestNewToolRejects(t *testing.T) {
	fn := func(context.Context, weatherArgs) (int, error) { return 0, nil }
	for _, name := range []string{"", "has space", strings.Repeat("x", 65), "ü"} {
		if _, err := NewTool(name, "", fn); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := NewTool[weatherArgs, int]("nilfn", "", nil); err == nil {
		t.Error("nil function accepted")
	}
	if _, err := NewTool("intargs", "", func(context.Context, int) (int, error) { return 0, nil }); err == nil {
		t.Error("non-struct args accepted")
	}
}

func TestToolbox(t *testing.T) {
	var runs atomic.Int32
	w := newWeatherTool(t, &runs)
	echo, err := NewTool("echo", "echo", func(_ context.Context, a struct {
		Text string `json:"text"`
	}) (string, error) {
		return a.Text, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	box, err := NewToolbox(w, echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := box.Add(echo); err == nil {
		t.Fatal("duplicate accepted")
	}
	if err := box.Add(nil); err == nil {
		t.Fatal("nil accepted")
	}
	specs := box.Specs()
	if len(specs) != 2 || specs[0].Name != "echo" || specs[1].Name != "weather" {
		t.Fatalf("specs = %+v", specs)
	}
	if caps := strings.Join(box.Capabilities(), ","); caps != "tool.echo,tool.weather" {
		t.Fatalf("capabilities = %s", caps)
	}
	out, err := box.Call(context.Background(), "echo", json.RawMessage(`{"text":"hi"}`))
	if err != nil || string(out) != `"hi"` {
		t.Fatalf("echo = %s, %v", out, err)
	}
	if _, err := box.Call(context.Background(), "nope", nil); agent.CodeOf(err) != agent.CodeNotFound {
		t.Fatalf("unknown tool: %v", err)
	}
	var zero Toolbox
	if err := zero.Add(echo); err != nil {
		t.Fatalf("zero Toolbox: %v", err)
	}
}

// FuzzToolCall feeds arbitrary bytes as tool arguments: the tool must never panic, and
// anything the schema refuses must come back as invalid_argument without running the
// function.
func FuzzToolCall(f *testing.F) {
	for _, s := range []string{`{"city":"Oslo"}`, `{}`, `[]`, `{"city":1}`, `{"city":"a","days":7,"units":"metric"}`, `nul`, `{"city":"\ud800"}`} {
		f.Add([]byte(s))
	}
	var runs atomic.Int32
	tool := newWeatherTool(f, &runs)
	f.Fuzz(func(t *testing.T, args []byte) {
		before := runs.Load()
		_, err := tool.Call(context.Background(), args)
		if err != nil && agent.CodeOf(err) == agent.CodeInvalidArgument && runs.Load() != before {
			t.Fatalf("function ran on invalid arguments %q", args)
		}
	})
}
