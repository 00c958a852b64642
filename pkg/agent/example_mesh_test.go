package agent_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// These examples need a running mesh (`mxp dev`), so they are compiled but not run; the
// programs under examples/ run the same code against an in-process mesh in their tests.

type AskRequest struct {
	Prompt string `json:"prompt"`
}

type AskResponse struct {
	Answer string `json:"answer"`
	Steps  int    `json:"steps"`
}

func ExampleDialPlaintext() {
	a, err := agent.New(agent.Config{Name: "legacy-bot"})
	if err != nil {
		log.Fatal(err)
	}
	// An edge's plaintext listener (`--compat-addr`), for local development only: no
	// encryption, no authentication, one frame per datagram.
	conn, err := agent.DialPlaintext(context.Background(), "127.0.0.1:9001")
	if err != nil {
		log.Fatal(err)
	}
	if err := a.RunConn(context.Background(), conn); err != nil {
		log.Fatal(err)
	}
}

func ExampleAgent_CallCapability() {
	var a *agent.Agent // a running agent, inside a handler or after Run started
	ctx := context.Background()

	// By capability: discover an online agent that offers it and call it.
	out, err := a.CallCapability(ctx, "weather.answer", []byte(`{"prompt":"weather in Oslo?"}`))
	if err != nil {
		switch agent.CodeOf(err) {
		case agent.CodeNotFound: // nobody offers the capability right now
		case agent.CodeUnreachable, agent.CodeTimeout: // gone or slow: try another
		}
		log.Fatal(err)
	}
	fmt.Println(string(out))

	// By id, with typed JSON on both sides.
	agents, err := a.Discover(ctx, mxp.DiscoverRequest{Capabilities: []string{"weather.answer"}})
	if err != nil || len(agents) == 0 {
		log.Fatal("nobody to ask")
	}
	var resp AskResponse
	if err := a.CallJSON(ctx, agents[0].ID.String(), AskRequest{Prompt: "and in Bergen?"}, &resp); err != nil {
		log.Fatal(err)
	}

	// Events and streams.
	if err := a.Publish(ctx, "weather.asked", []byte(`{"city":"Bergen"}`)); err != nil {
		log.Fatal(err)
	}
	stream, err := a.OpenStream(ctx, agents[0].ID.String(), mxp.StreamKindText, []byte(`{"prompt":"tell me a long story"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close(ctx)
	for {
		chunk, err := stream.Recv(ctx)
		if err != nil {
			break // io.EOF at a clean end
		}
		fmt.Print(string(chunk))
	}
}
