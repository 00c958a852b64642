package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func TestBasicAgentInTheMesh(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := meshtest.New(t, nil)
	a, err := NewAgent(Options{EdgeAddr: m.EdgeAddr, EdgeKey: m.EdgeKey, KeyFile: t.TempDir() + "/k", Name: "basic"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	client, err := agent.New(agent.Config{Name: "client", EdgeAddr: m.EdgeAddr, EdgeKey: m.EdgeKey, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := meshtest.Run(t, a)
	meshtest.Run(t, client)

	var resp AskResponse
	err = client.CallJSON(ctx, mustFind(ctx, t, client), AskRequest{Prompt: `use word_count {"text":"one two three"}`}, &resp)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Steps != 2 || !strings.Contains(resp.Answer, `{"words":3}`) {
		t.Fatalf("answer = %+v", resp)
	}
	// Without a tool name the mock model just answers.
	if err := client.CallJSON(ctx, a.ID(), AskRequest{Prompt: "hello"}, &resp); err != nil || resp.Answer != "Mock reply to: hello" {
		t.Fatalf("plain answer = %+v, %v", resp, err)
	}
	if err := client.CallJSON(ctx, a.ID(), AskRequest{}, &resp); agent.CodeOf(err) != agent.CodeInvalidArgument {
		t.Fatalf("empty prompt: %v", err)
	}
	a.Retire()
	if err := done(); err != nil {
		t.Fatal(err)
	}
}

// mustFind discovers the basic agent by its capability, as any caller would.
func mustFind(ctx context.Context, t *testing.T, client *agent.Agent) string {
	t.Helper()
	agents, err := client.Discover(ctx, mxp.DiscoverRequest{Capabilities: []string{Capability}})
	if err != nil || len(agents) != 1 {
		t.Fatalf("discover: %v, %v", agents, err)
	}
	return agents[0].ID.String()
}
