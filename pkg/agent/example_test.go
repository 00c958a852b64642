package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// The snippets in docs/usage.md are the bodies of these examples (TestUsageSnippets
// checks it), so every snippet in the guide compiles and runs.

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
	weather, err := agent.NewTool("weather", "Current weather for a city",
		func(ctx context.Context, args WeatherArgs) (Weather, error) {
			return Weather{City: args.City, TempC: 21.5}, nil
		},
		agent.WithCapabilities("weather.read"))
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
	schema, err := agent.SchemaOf[WeatherArgs]()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(schema))
	// Output:
	// {"type":"object","properties":{"city":{"type":"string","description":"the city, e.g. Oslo","minLength":1},"units":{"type":"string","enum":["metric","imperial"]},"days":{"type":"integer","description":"forecast length","minimum":1,"maximum":7}},"required":["city"],"additionalProperties":false}
}

func ExampleToolLoop() {
	weather, err := agent.NewTool("weather", "Current weather for a city",
		func(ctx context.Context, args WeatherArgs) (Weather, error) {
			return Weather{City: args.City, TempC: 21.5}, nil
		})
	if err != nil {
		log.Fatal(err)
	}
	tools, err := agent.NewToolbox(weather)
	if err != nil {
		log.Fatal(err)
	}
	loop := agent.ToolLoop{
		Model:    agent.AdapterModel{Adapter: &provider.Mock{}}, // the deterministic mock model
		Tools:    tools,
		MaxSteps: 4,
	}
	res, err := loop.Run(context.Background(), agent.NewChatRequest("mock",
		agent.Message{Role: agent.RoleUser, Content: `use weather {"city":"Oslo"}`}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Answer.Content)
	fmt.Println("steps:", res.Steps, "tool calls:", res.ToolCalls)
	// Output:
	// Tool weather returned: {"city":"Oslo","temp_c":21.5}.
	// steps: 2 tool calls: 1
}

func ExampleLifecycle() {
	lc := agent.NewLifecycle()
	lc.OnTransition(func(t agent.Transition) {
		fmt.Printf("%s: %s -> %s\n", t.Event, t.From, t.To)
	})
	for _, ev := range []agent.LifecycleEvent{agent.EventBoot, agent.EventActivate, agent.EventSuspend, agent.EventResume} {
		if _, err := lc.Fire(ev); err != nil {
			log.Fatal(err)
		}
	}
	_, err := lc.Fire(agent.EventBoot)
	fmt.Println(err)
	// Output:
	// boot: init -> ready
	// activate: ready -> active
	// suspend: active -> suspended
	// resume: suspended -> active
	// agent: event "boot" not allowed in state "active"
}

func ExampleJSONCall() {
	type AddRequest struct{ A, B int }
	type AddResponse struct{ Sum int }
	handler := agent.JSONCall(func(ctx context.Context, req AddRequest) (AddResponse, error) {
		if caller, ok := agent.MetaFrom(ctx); ok && caller.From == "" {
			return AddResponse{}, agent.Errorf(agent.CodeForbidden, "anonymous callers may not add")
		}
		return AddResponse{Sum: req.A + req.B}, nil
	})

	ctx := agent.WithMeta(context.Background(), agent.Meta{Kind: agent.KindCall, From: "7c1e0f52-0d4e-4d43-9a57-3f1b0c9f2a11"})
	out, err := handler(ctx, []byte(`{"A":2,"B":3}`))
	fmt.Println(string(out), err)
	_, err = handler(ctx, []byte(`not json`))
	fmt.Println(agent.CodeOf(err))
	// Output:
	// {"Sum":5} <nil>
	// invalid_argument
}

func ExampleRing() {
	memory := agent.NewRing[agent.Message](3)
	for _, text := range []string{"one", "two", "three", "four"} {
		memory.Push(agent.Message{Role: agent.RoleUser, Content: text})
	}
	for _, m := range memory.Items() {
		fmt.Print(m.Content, " ")
	}
	fmt.Println()
	// Output:
	// two three four
}

func ExampleOpenJournal() {
	dir, err := os.MkdirTemp("", "journal")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	type Note struct {
		Seq  int    `json:"seq"`
		Text string `json:"text"`
	}
	j, err := agent.OpenJournal(dir, agent.JournalOptions{Sync: agent.SyncAlways})
	if err != nil {
		log.Fatal(err)
	}
	for i, text := range []string{"booted", "answered a call"} {
		if err := j.Append(Note{Seq: i, Text: text}); err != nil {
			log.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		log.Fatal(err)
	}

	// After a restart: replay what was written.
	j, err = agent.OpenJournal(dir, agent.JournalOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	err = j.Replay(func(entry json.RawMessage) error {
		var n Note
		if err := json.Unmarshal(entry, &n); err != nil {
			return err
		}
		fmt.Println(n.Seq, n.Text)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 0 booted
	// 1 answered a call
}

func ExampleSaveCheckpoint() {
	dir, err := os.MkdirTemp("", "checkpoint")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "planner.json")

	type PlannerState struct {
		Goal  string `json:"goal"`
		Steps int    `json:"steps"`
	}
	conversation := agent.NewRing[agent.Message](100)
	conversation.Push(agent.Message{Role: agent.RoleUser, Content: "plan a trip to Lisbon"})
	if err := agent.SaveCheckpoint(path, PlannerState{Goal: "Lisbon", Steps: 3}, conversation); err != nil {
		log.Fatal(err)
	}

	// A restarted agent carries on from the checkpoint.
	var state PlannerState
	restored := agent.NewRing[agent.Message](100)
	_, err = agent.LoadCheckpoint(path, &state, restored)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("first start")
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(state.Goal, state.Steps, restored.Items()[0].Content)
	// Output:
	// Lisbon 3 plan a trip to Lisbon
}

func ExampleLocalVectorStore() {
	ctx := context.Background()
	store := agent.NewLocalVectorStore(3)
	err := store.Upsert(ctx,
		agent.VectorDoc{ID: "cats", Vector: []float32{0.9, 0.1, 0}, Tags: []string{"animals"}},
		agent.VectorDoc{ID: "dogs", Vector: []float32{0.8, 0.3, 0}, Tags: []string{"animals"}},
		agent.VectorDoc{ID: "tax", Vector: []float32{0, 0.1, 0.9}, Tags: []string{"finance"}},
	)
	if err != nil {
		log.Fatal(err)
	}
	matches, err := store.Search(ctx, agent.VectorQuery{Vector: []float32{1, 0.2, 0}, K: 2, Tags: []string{"animals"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range matches {
		fmt.Printf("%s %.3f\n", m.ID, m.Score)
	}
	// Output:
	// cats 0.996
	// dogs 0.987
}
