package llm_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
)

// This example needs a running mesh (`mxp dev`), so it is compiled but not run; the
// programs under examples/ run the same code against an in-process mesh in their tests.

type AskRequest struct {
	Prompt string `json:"prompt"`
}

type AskResponse struct {
	Answer string `json:"answer"`
	Steps  int    `json:"steps"`
}

func ExampleMesh() {
	a, err := agent.New(agent.Config{
		Name:         "weather-bot",
		Capabilities: []string{"weather.answer"},
		Version:      "1.0.0",
		// The edge: Config.EdgeAddr and Config.EdgeKey, else $MXP_EDGE and $MXP_EDGE_KEY,
		// else .mxp/edge.json (a running `mxp dev`).
		KeyFile: ".mxp/weather-bot.key", // this agent's identity, created on first run
	})
	if err != nil {
		log.Fatal(err)
	}
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
	tools.Advertise(a) // registers "tool.weather", so other agents can discover it
	// Each call is answered by the mesh's model, which may use the agent's tools.
	a.HandleCall(agent.JSONCall(func(ctx context.Context, req AskRequest) (AskResponse, error) {
		loop := llm.ToolLoop{Model: llm.Mesh(a), Tools: tools, MaxSteps: 4}
		res, err := loop.Run(ctx, llm.NewChatRequest("", llm.Message{Role: llm.RoleUser, Content: req.Prompt}))
		if err != nil {
			return AskResponse{}, err
		}
		return AskResponse{Answer: res.Answer.Content, Steps: res.Steps}, nil
	}))

	// SIGINT or SIGTERM retires the agent: no new calls, in-flight ones finish, deregister.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
