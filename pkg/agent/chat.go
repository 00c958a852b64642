package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// The conversation types are the inference service's own (package
// services/inference/provider), so a request built here is exactly what the service
// receives.
type (
	// Message is one turn of a conversation with a model.
	Message = provider.Message
	// Role is who wrote a message.
	Role = provider.Role
	// ToolCall is a model's request to run one tool; Arguments is a JSON object as text.
	ToolCall = provider.ToolCall
	// ChatRequest asks a model for the next message of a conversation.
	ChatRequest = provider.Request
	// Usage counts the tokens a request used.
	Usage = provider.Usage
	// FinishReason says why the model stopped.
	FinishReason = provider.FinishReason
)

// Roles of a conversation.
const (
	RoleSystem    = provider.RoleSystem
	RoleUser      = provider.RoleUser
	RoleAssistant = provider.RoleAssistant
	RoleTool      = provider.RoleTool
)

// ChatResponse is a model's complete answer: a message (text, tool calls, or both), why
// it stopped, and the tokens used.
type ChatResponse struct {
	Model        string       `json:"model,omitempty"`
	Message      Message      `json:"message"`
	FinishReason FinishReason `json:"finish_reason,omitempty"`
	Usage        Usage        `json:"usage"`
}

// ChatModel is anything that answers a ChatRequest with a whole message: the inference
// service through the mesh, a provider adapter in process (see AdapterModel), or a fake
// in tests.
type ChatModel interface {
	Chat(ctx context.Context, req *ChatRequest) (ChatResponse, error)
}

// ChatModelFunc adapts a function to ChatModel.
type ChatModelFunc func(ctx context.Context, req *ChatRequest) (ChatResponse, error)

// Chat calls f.
func (f ChatModelFunc) Chat(ctx context.Context, req *ChatRequest) (ChatResponse, error) {
	return f(ctx, req)
}

// AdapterModel runs a provider adapter in process (for example the deterministic
// provider.Mock) as a ChatModel, collecting its stream into one response.
type AdapterModel struct {
	Adapter provider.ModelAdapter
}

// Chat streams req through the adapter and collects the result.
func (m AdapterModel) Chat(ctx context.Context, req *ChatRequest) (ChatResponse, error) {
	s, err := m.Adapter.Stream(ctx, req)
	if err != nil {
		return ChatResponse{}, err
	}
	resp, err := CollectStream(s)
	resp.Model = req.Model
	return resp, err
}

// CollectStream reads a model stream to its end and assembles the assistant message:
// text chunks are concatenated and tool-call deltas are merged by index. It closes s.
func CollectStream(s provider.Stream) (ChatResponse, error) {
	defer s.Close()
	var (
		text  strings.Builder
		calls = map[int]*ToolCall{}
		args  = map[int]*strings.Builder{}
		resp  = ChatResponse{Message: Message{Role: RoleAssistant}}
	)
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return resp, err
		}
		text.WriteString(c.Text)
		if d := c.ToolCall; d != nil {
			tc, ok := calls[d.Index]
			if !ok {
				tc = &ToolCall{}
				calls[d.Index] = tc
				args[d.Index] = &strings.Builder{}
			}
			if d.ID != "" {
				tc.ID = d.ID
			}
			if d.Name != "" {
				tc.Name = d.Name
			}
			args[d.Index].WriteString(d.Arguments)
		}
		if c.FinishReason != "" {
			resp.FinishReason = c.FinishReason
		}
		if c.Usage != nil {
			resp.Usage = *c.Usage
		}
	}
	resp.Message.Content = text.String()
	idx := make([]int, 0, len(calls))
	for i := range calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		tc := calls[i]
		tc.Arguments = args[i].String()
		if tc.Name == "" {
			return resp, fmt.Errorf("agent: model stream: tool call %d has no name", i)
		}
		resp.Message.ToolCalls = append(resp.Message.ToolCalls, *tc)
	}
	return resp, nil
}

func addUsage(a, b Usage) Usage {
	return Usage{InputTokens: a.InputTokens + b.InputTokens, OutputTokens: a.OutputTokens + b.OutputTokens, Estimated: a.Estimated || b.Estimated}
}
