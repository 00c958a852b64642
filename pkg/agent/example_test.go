package agent_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mxp-mesh/mesh/pkg/agent"
)

// The snippets in docs/usage.md are the bodies of these examples and those of the llm and
// memory packages (TestUsageSnippets checks it), so every snippet in the guide compiles
// and runs.

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
