package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startMesh(t *testing.T) *meshtest.Mesh {
	t.Helper()
	m, err := meshtest.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("mesh: %v", err)
		}
	})
	return m
}

func runAgent(t *testing.T, _ *meshtest.Mesh, a *agent.Agent) func() error { return meshtest.Run(t, a) }

func newAgent(t testing.TB, m *meshtest.Mesh, name string, caps ...string) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{Name: name, Capabilities: caps, EdgeAddr: m.EdgeAddr, EdgeKey: m.EdgeKey,
		KeyFile: t.TempDir() + "/agent.key", HeartbeatInterval: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSDKEndToEnd(t *testing.T) {
	m := startMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The server agent: calls, events, streams.
	server := newAgent(t, m, "upper", "text.upper")
	events := make(chan agent.Event, 4)
	server.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) {
		if string(p) == "forbidden" {
			return nil, agent.Errorf(agent.CodeForbidden, "no")
		}
		if string(p) == "panic" {
			panic("boom")
		}
		return bytes.ToUpper(p), nil
	})
	server.HandleEvent(func(ctx context.Context, ev agent.Event) error { events <- ev; return nil })
	server.HandleStream(func(ctx context.Context, s *agent.Stream) error {
		// Answer the opening request letter by letter, then echo the caller's chunks
		// until it says "stop"; returning ends the stream.
		for _, r := range string(s.Request()) {
			if err := s.Send(ctx, []byte(strings.ToUpper(string(r)))); err != nil {
				return err
			}
		}
		for {
			b, err := s.Recv(ctx)
			if err != nil {
				return err
			}
			if string(b) == "stop" {
				return nil
			}
			if err := s.Send(ctx, bytes.ToUpper(b)); err != nil {
				return err
			}
		}
	})
	serverDone := runAgent(t, m, server)
	if err := server.Subscribe(ctx, "news.>"); err != nil {
		t.Fatal(err)
	}

	client := newAgent(t, m, "client")
	runAgent(t, m, client)

	// Calls by id and by capability.
	out, err := client.Call(ctx, server.ID(), []byte("hello"))
	if err != nil || string(out) != "HELLO" {
		t.Fatalf("call by id = %q, %v", out, err)
	}
	out, err = client.CallCapability(ctx, "text.upper", []byte("by capability"))
	if err != nil || string(out) != "BY CAPABILITY" {
		t.Fatalf("call by capability = %q, %v", out, err)
	}
	// Errors travel with their codes.
	if _, err := client.Call(ctx, server.ID(), []byte("forbidden")); agent.CodeOf(err) != agent.CodeForbidden {
		t.Fatalf("handler error: %v (code %s)", err, agent.CodeOf(err))
	}
	if _, err := client.Call(ctx, server.ID(), []byte("panic")); agent.CodeOf(err) != agent.CodeInternal {
		t.Fatalf("handler panic: %v", err)
	}
	if _, err := client.Call(ctx, mxp.NewAgentID().String(), nil); agent.CodeOf(err) != agent.CodeUnreachable {
		t.Fatalf("call to nobody: %v (code %s)", err, agent.CodeOf(err))
	}
	if _, err := client.CallCapability(ctx, "no.such.capability", nil); agent.CodeOf(err) != agent.CodeNotFound {
		t.Fatalf("unknown capability: %v", err)
	}

	// The inference service through the mesh, in a tool loop.
	tool, err := llm.NewTool("shout", "upper-case a text", func(ctx context.Context, a struct {
		Text string `json:"text"`
	}) (string, error) {
		out, err := client.Call(ctx, server.ID(), []byte(a.Text))
		return string(out), err
	})
	if err != nil {
		t.Fatal(err)
	}
	tools, _ := llm.NewToolbox(tool)
	res, err := (&llm.ToolLoop{Model: llm.Mesh(client), Tools: tools}).Run(ctx,
		llm.NewChatRequest("", llm.Message{Role: llm.RoleUser, Content: `please shout {"text":"quiet"}`}))
	if err != nil {
		t.Fatal(err)
	}
	if res.ToolCalls != 1 || !strings.Contains(res.Answer.Content, `"QUIET"`) {
		t.Fatalf("tool loop over the mesh: %+v", res)
	}

	// Events.
	if err := client.Publish(ctx, "news.today", []byte("sunny")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Topic != "news.today" || string(ev.Payload) != "sunny" {
			t.Fatalf("event = %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("event never arrived")
	}

	// Streams.
	s, err := client.OpenStream(ctx, server.ID(), mxp.StreamKindText, []byte("xyz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b", "stop"} {
		if err := s.Send(ctx, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for {
		b, err := s.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream: %v after %q", err, got)
		}
		got = append(got, string(b))
	}
	if strings.Join(got, ",") != "X,Y,Z,A,B" {
		t.Fatalf("stream chunks = %q", got)
	}

	// Retire: the server deregisters; discovery no longer finds it.
	server.Retire()
	if err := serverDone(); err != nil {
		t.Fatalf("server Run = %v", err)
	}
	if server.State() != agent.StateTerminated {
		t.Fatalf("server state %s", server.State())
	}
	if _, err := client.CallCapability(ctx, "text.upper", nil); agent.CodeOf(err) != agent.CodeNotFound {
		t.Fatalf("after retire: %v", err)
	}
}

// A suspended agent answers unavailable; CallCapability moves on to the next provider.
func TestCallCapabilitySkipsSuspendedAgents(t *testing.T) {
	m := startMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var servers []*agent.Agent
	for _, name := range []string{"one", "two"} {
		a := newAgent(t, m, name, "greet")
		a.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) { return []byte(name), nil })
		runAgent(t, m, a)
		servers = append(servers, a)
	}
	client := newAgent(t, m, "client")
	runAgent(t, m, client)
	for i, s := range servers {
		if err := s.Suspend(); err != nil {
			t.Fatal(err)
		}
		out, err := client.CallCapability(ctx, "greet", nil)
		other := servers[1-i].Name()
		if err != nil || string(out) != other {
			t.Fatalf("with %s suspended: %q, %v; want %s", s.Name(), out, err, other)
		}
		if err := s.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers {
		if err := s.Suspend(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.CallCapability(ctx, "greet", nil); agent.CodeOf(err) != agent.CodeUnavailable {
		t.Fatalf("all suspended: %v", err)
	}
}
