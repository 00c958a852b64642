package inference_test

import (
	"context"
	"fmt"

	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// A service with only the built-in mock provider, calling a tool and then answering with
// its result: the loop an agent SDK runs.
func Example() {
	svc, err := inference.New(inference.Defaults(), inference.Deps{})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	tools := []provider.Tool{{Name: "get_weather", Parameters: []byte(`{"type":"object"}`)}}
	msgs := []provider.Message{{Role: provider.RoleUser, Content: `use get_weather {"city":"Oslo"}`}}

	resp, err := svc.Chat(ctx, &inference.ChatRequest{Request: provider.Request{Model: "mock", Messages: msgs, Tools: tools}})
	if err != nil {
		panic(err)
	}
	call := resp.ToolCalls[0]
	fmt.Println(resp.FinishReason, call.Name, call.Arguments)

	msgs = append(msgs,
		provider.Message{Role: provider.RoleAssistant, ToolCalls: resp.ToolCalls},
		provider.Message{Role: provider.RoleTool, ToolCallID: call.ID, Content: "12°C, cloudy"})
	resp, err = svc.Chat(ctx, &inference.ChatRequest{Request: provider.Request{Model: "mock", Messages: msgs, Tools: tools}})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Text)
	// Output:
	// tool_calls get_weather {"city":"Oslo"}
	// Tool get_weather returned: 12°C, cloudy.
}
