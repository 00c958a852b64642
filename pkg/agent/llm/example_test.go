package llm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
)

// The snippets in docs/usage.md about tools and models are the bodies of these examples
// (agent's TestUsageSnippets checks it).

type WeatherArgs struct {
	City  string `json:"city" desc:"the city, e.g. Oslo" mxp:"minLength=1"`
	Units string `json:"units,omitempty" enum:"metric,imperial"`
	Days  *int   `json:"days" desc:"forecast length" mxp:"min=1,max=7"`
}

type Weather struct {
	City  string  `json:"city"`
	TempC float64 `json:"temp_c"`
}

func ExampleNewTool() {
	weather, err := llm.NewTool("weather", "Current weather for a city",
		func(ctx context.Context, args WeatherArgs) (Weather, error) {
			return Weather{City: args.City, TempC: 21.5}, nil
		},
		llm.WithCapabilities("weather.read"))
	if err != nil {
		log.Fatal(err)
	}
	out, err := weather.Call(context.Background(), json.RawMessage(`{"city":"Oslo"}`))
	fmt.Println(string(out), err)

	_, err = weather.Call(context.Background(), json.RawMessage(`{"city":"Oslo","days":30}`))
	fmt.Println(agent.CodeOf(err))
	// Output:
	// {"city":"Oslo","temp_c":21.5} <nil>
	// invalid_argument
}

func ExampleSchemaOf() {
	schema, err := llm.SchemaOf[WeatherArgs]()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(schema))
	// Output:
	// {"type":"object","properties":{"city":{"type":"string","description":"the city, e.g. Oslo","minLength":1},"units":{"type":"string","enum":["metric","imperial"]},"days":{"type":"integer","description":"forecast length","minimum":1,"maximum":7}},"required":["city"],"additionalProperties":false}
}

func ExampleToolLoop() {
	weather, err := llm.NewTool("weather", "Current weather for a city",
		func(ctx context.Context, args WeatherArgs) (Weather, error) {
			return Weather{City: args.City, TempC: 21.5}, nil
		})
	if err != nil {
		log.Fatal(err)
	}
	tools, err := llm.NewToolbox(weather)
	if err != nil {
		log.Fatal(err)
	}
	// A scripted model stands in for a real one (llm.Mesh(a) for the mesh's): it asks for
	// the weather in Oslo, then reports what the tool returned.
	model := llm.ChatModelFunc(func(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
		if last := req.Messages[len(req.Messages)-1]; last.Role == llm.RoleTool {
			return &llm.ChatResponse{Response: llm.Response{Text: "Tool weather returned: " + last.Content + "."}}, nil
		}
		call := llm.ToolCall{ID: "call-1", Name: "weather", Arguments: `{"city":"Oslo"}`}
		return &llm.ChatResponse{Response: llm.Response{ToolCalls: []llm.ToolCall{call}}}, nil
	})
	loop := llm.ToolLoop{
		Model:    model,
		Tools:    tools,
		MaxSteps: 4,
	}
	res, err := loop.Run(context.Background(), llm.NewChatRequest("scripted",
		llm.Message{Role: llm.RoleUser, Content: "What is the weather in Oslo?"}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Answer.Content)
	fmt.Println("steps:", res.Steps, "tool calls:", res.ToolCalls)
	// Output:
	// Tool weather returned: {"city":"Oslo","temp_c":21.5}.
	// steps: 2 tool calls: 1
}
