package inference_test

import (
	"context"
	"fmt"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference"
)

// A service with only the built-in mock provider, calling a tool and then answering with
// its result: the loop an agent SDK runs.
func Example() {
	svc, err := inference.New(inference.Defaults(), inference.Deps{})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	tools := []api.Tool{{Name: "get_weather", Parameters: []byte(`{"type":"object"}`)}}
	msgs := []api.Message{{Role: api.RoleUser, Content: `use get_weather {"city":"Oslo"}`}}

	resp, err := svc.Chat(ctx, &inference.ChatRequest{Request: api.Request{Model: "mock", Messages: msgs, Tools: tools}})
	if err != nil {
		panic(err)
	}
	call := resp.ToolCalls[0]
	fmt.Println(resp.FinishReason, call.Name, call.Arguments)

	msgs = append(msgs,
		api.Message{Role: api.RoleAssistant, ToolCalls: resp.ToolCalls},
		api.Message{Role: api.RoleTool, ToolCallID: call.ID, Content: "12°C, cloudy"})
	resp, err = svc.Chat(ctx, &inference.ChatRequest{Request: api.Request{Model: "mock", Messages: msgs, Tools: tools}})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Text)
	// Output:
	// tool_calls get_weather {"city":"Oslo"}
	// Tool get_weather returned: 12°C, cloudy.
}
