package inference

import (
	"context"
	"fmt"
	"strings"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// Context budgeting (opt-in per request with ChatRequest.ContextBudget).
//
// The budget is the model's context window minus the output reserve (max_tokens when
// the request sets it, else the model's output_reserve, else max(1024, window/8) capped at
// half the window). Prompt size is provider.EstimateRequest. When it is over budget:
//   - the system prompt, system messages and pinned messages are kept;
//   - the last turn (the message being answered, with its tool call if it is a result) is
//     kept;
//   - the oldest remaining turns are dropped first; an assistant message with tool calls
//     and the tool results answering them form one turn, so a call is never separated
//     from its result;
//   - in "summarize" mode the dropped turns are replaced by one user message holding a
//     summary written by Config.SummaryModel (falling back to plain dropping if the
//     summary call fails);
//   - if the kept messages alone exceed the budget the request fails with
//     context_overflow before anything is sent.
//
// A model with no configured context window is not budgeted.

// turn is a run of messages that must stay together.
type turn struct {
	start, end int // messages[start:end]
	keep       bool
	cost       int
}

// groupTurns splits messages into turns: an assistant message with tool calls together
// with the tool results that answer it; every other message alone.
func groupTurns(msgs []api.Message) []turn {
	var out []turn
	for i := 0; i < len(msgs); {
		m := msgs[i]
		t := turn{start: i, end: i + 1, keep: m.Role == api.RoleSystem || m.Pinned}
		t.cost = provider.EstimateMessage(&msgs[i])
		if m.Role == api.RoleAssistant && len(m.ToolCalls) > 0 {
			ids := map[string]bool{}
			for _, tc := range m.ToolCalls {
				ids[tc.ID] = true
			}
			for t.end < len(msgs) && msgs[t.end].Role == api.RoleTool && ids[msgs[t.end].ToolCallID] {
				t.keep = t.keep || msgs[t.end].Pinned
				t.cost += provider.EstimateMessage(&msgs[t.end])
				t.end++
			}
		}
		out = append(out, t)
		i = t.end
	}
	if len(out) > 0 {
		out[len(out)-1].keep = true
	}
	return out
}

func outputReserve(mc ModelConfig, maxTokens int) int {
	if maxTokens > 0 {
		return maxTokens
	}
	if mc.OutputReserve > 0 {
		return mc.OutputReserve
	}
	return min(max(1024, mc.ContextWindow/8), mc.ContextWindow/2)
}

// fitBudget returns req with the oldest droppable turns removed so that its estimate fits
// budget, and the removed messages.
func fitBudget(req api.Request, budget int) (api.Request, []api.Message, error) {
	total := provider.EstimateRequest(&req)
	if total <= budget {
		return req, nil, nil
	}
	turns := groupTurns(req.Messages)
	drop := make([]bool, len(turns))
	for i, t := range turns {
		if total <= budget {
			break
		}
		if !t.keep {
			drop[i] = true
			total -= t.cost
		}
	}
	if total > budget {
		return req, nil, provider.Errorf(provider.CodeContextOverflow,
			"prompt needs about %d tokens after dropping every droppable turn; the budget is %d", total, budget)
	}
	var kept, dropped []api.Message
	for i, t := range turns {
		if drop[i] {
			dropped = append(dropped, req.Messages[t.start:t.end]...)
		} else {
			kept = append(kept, req.Messages[t.start:t.end]...)
		}
	}
	req.Messages = kept
	return req, dropped, nil
}

// SummaryPrompt is the system prompt of the summary call.
const SummaryPrompt = "Summarise the following earlier conversation turns in a few sentences. " +
	"Keep facts, names, numbers, decisions, tool results and open questions. Write only the summary."

// SummaryPrefix starts the message that replaces summarised turns.
const SummaryPrefix = "[Summary of earlier conversation] "

func (s *Service) applyBudget(ctx context.Context, r *routes, t *target, req api.Request, mode string) (api.Request, error) {
	window := t.model.ContextWindow
	if window <= 0 {
		return req, nil
	}
	budget := window - outputReserve(t.model, req.MaxTokens)
	if budget <= 0 {
		return req, provider.Errorf(provider.CodeContextOverflow,
			"max_tokens %d leaves no room for the prompt in a %d-token window", req.MaxTokens, window)
	}
	fitted, dropped, err := fitBudget(req, budget)
	if err != nil || len(dropped) == 0 || mode != BudgetSummarize {
		return fitted, err
	}
	summary, err := s.summarize(ctx, r, dropped)
	if err != nil {
		s.log.Warn("context summary failed; dropping turns instead", "model", t.name, "error", err)
		return fitted, nil
	}
	msg := api.Message{Role: api.RoleUser, Content: SummaryPrefix + summary}
	room := budget - provider.EstimateRequest(&fitted)
	if cost := provider.EstimateMessage(&msg); cost > room {
		// Cut the summary to the room left (about four characters a token).
		limit := (room - 8) * 4
		if limit <= 0 {
			return fitted, nil
		}
		if limit < len(msg.Content) {
			msg.Content = strings.ToValidUTF8(msg.Content[:limit], "")
		}
	}
	// The summary goes where the dropped turns were: after the leading kept system and
	// pinned messages, before the remaining conversation.
	at := 0
	for at < len(fitted.Messages) && (fitted.Messages[at].Role == api.RoleSystem || fitted.Messages[at].Pinned) {
		at++
	}
	msgs := make([]api.Message, 0, len(fitted.Messages)+1)
	msgs = append(msgs, fitted.Messages[:at]...)
	msgs = append(msgs, msg)
	fitted.Messages = append(msgs, fitted.Messages[at:]...)
	return fitted, nil
}

func (s *Service) summarize(ctx context.Context, r *routes, dropped []api.Message) (string, error) {
	var b strings.Builder
	for _, m := range dropped {
		switch {
		case len(m.ToolCalls) > 0:
			for _, tc := range m.ToolCalls {
				fmt.Fprintf(&b, "assistant called %s(%s)\n", tc.Name, tc.Arguments)
			}
			if m.Content != "" {
				fmt.Fprintf(&b, "assistant: %s\n", m.Content)
			}
		case m.Role == api.RoleTool:
			fmt.Fprintf(&b, "tool result: %s\n", m.Content)
		default:
			fmt.Fprintf(&b, "%s: %s\n", m.Role, m.Content)
		}
	}
	model := r.cfg.SummaryModel
	if model == "" {
		model = r.cfg.DefaultModel
	}
	resp, err := s.Chat(ctx, &ChatRequest{Request: api.Request{Model: model, System: SummaryPrompt,
		Messages: []api.Message{{Role: api.RoleUser, Content: b.String()}}}})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(resp.Text), nil
}
