package inference

import (
	"context"
	"strings"
	"testing"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

func msg(role api.Role, text string) api.Message {
	return api.Message{Role: role, Content: text}
}

func long(n int) string { return strings.Repeat("word ", n) }

func TestGroupTurnsKeepsToolCallWithResult(t *testing.T) {
	msgs := []api.Message{
		msg(api.RoleSystem, "sys"),
		msg(api.RoleUser, "q1"),
		{Role: api.RoleAssistant, ToolCalls: []api.ToolCall{{ID: "a", Name: "f"}, {ID: "b", Name: "g"}}},
		{Role: api.RoleTool, ToolCallID: "a", Content: "ra"},
		{Role: api.RoleTool, ToolCallID: "b", Content: "rb"},
		msg(api.RoleAssistant, "answer"),
		msg(api.RoleUser, "q2"),
	}
	turns := groupTurns(msgs)
	var shape []string
	for _, tr := range turns {
		s := ""
		for _, m := range msgs[tr.start:tr.end] {
			s += string(m.Role[0])
		}
		if tr.keep {
			s += "!"
		}
		shape = append(shape, s)
	}
	eq(t, "turns", strings.Join(shape, " "), "s! u att a u!")
}

func TestFitBudget(t *testing.T) {
	pinned := msg(api.RoleUser, "pinned fact "+long(10))
	pinned.Pinned = true
	conv := []api.Message{
		msg(api.RoleSystem, "system prompt"),
		pinned,
		msg(api.RoleUser, "old question "+long(100)),
		{Role: api.RoleAssistant, ToolCalls: []api.ToolCall{{ID: "t1", Name: "lookup", Arguments: "{}"}}},
		{Role: api.RoleTool, ToolCallID: "t1", Content: "result " + long(100)},
		msg(api.RoleAssistant, "old answer "+long(100)),
		msg(api.RoleUser, "current question"),
	}
	req := api.Request{Messages: conv}
	full := provider.EstimateRequest(&req)
	cases := []struct {
		name    string
		budget  int
		want    string // first letters of kept roles (the second u is the pinned message)
		wantErr provider.Code
	}{
		{"fits", full, "suuatau", ""},
		{"drop oldest turn", full - 50, "suatau", ""},
		{"drop the tool pair together", full - 150, "suau", ""},
		{"keep only protected", full - 320, "suu", ""},
		{"overflow", 20, "", provider.CodeContextOverflow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := fitBudget(req, tc.budget)
			if tc.wantErr != "" {
				eq(t, "code", provider.CodeOf(err), tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var shape string
			for _, m := range got.Messages {
				shape += string(m.Role[0])
			}
			eq(t, "kept", shape, tc.want)
			if n := provider.EstimateRequest(&got); n > tc.budget {
				t.Errorf("estimate %d over budget %d", n, tc.budget)
			}
		})
	}
}

func TestBudgetThroughService(t *testing.T) {
	cfg := Defaults()
	cfg.Models["small"] = ModelConfig{Provider: KindMock, ContextWindow: 400, OutputReserve: 100}
	env := newTestService(t, cfg, nil)
	conv := []api.Message{
		msg(api.RoleUser, "first "+long(150)),
		msg(api.RoleAssistant, "reply "+long(150)),
		msg(api.RoleUser, "latest"),
	}
	// Without opt-in the request goes as is (the mock does not enforce windows).
	req := &ChatRequest{Request: api.Request{Model: "small", Messages: conv}}
	resp, err := env.svc.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.InputTokens < 300 {
		t.Errorf("input %d: the conversation was cut without opt-in", resp.Usage.InputTokens)
	}
	// drop: only the latest turn is left.
	req.ContextBudget = BudgetDrop
	resp, err = env.svc.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.InputTokens > 300 {
		t.Errorf("input %d after dropping", resp.Usage.InputTokens)
	}
	// summarize: the dropped turns come back as one summary message (the mock's
	// deterministic "summary" echoes its prompt, cut to the room left).
	req.ContextBudget = BudgetSummarize
	st, err := env.svc.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := provider.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "answered the latest turn", out.Text, "Mock reply to: latest")
	u := st.Usage()
	if u.InputTokens > 300 || u.InputTokens < 30 {
		t.Errorf("input %d with summary", u.InputTokens)
	}
	// A max_tokens that leaves no room is a context_overflow.
	req.MaxTokens = 400
	_, err = env.svc.Chat(context.Background(), req)
	eq(t, "code", provider.CodeOf(err), provider.CodeContextOverflow)
}
