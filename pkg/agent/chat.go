package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// The conversation types are the inference service's own (services/inference and its
// provider package), so a request built here is exactly what the service receives, and
// the service itself (*inference.Service) is a ChatModel.
type (
	// ChatRequest asks a model for the next message of a conversation; the embedded
	// provider.Request holds the model, messages and tools.
	ChatRequest = inference.ChatRequest
	// ChatResponse is a model's complete answer: text and/or tool calls, why it stopped,
	// the tokens used, and which model and provider answered.
	ChatResponse = inference.ChatResponse
	// Message is one turn of a conversation with a model.
	Message = provider.Message
	// Role is who wrote a message.
	Role = provider.Role
	// ToolCall is a model's request to run one tool; Arguments is a JSON object as text.
	ToolCall = provider.ToolCall
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

// NewChatRequest returns a request for model with the given messages.
func NewChatRequest(model string, messages ...Message) ChatRequest {
	return ChatRequest{Request: provider.Request{Model: model, Messages: messages}}
}

// ChatModel is anything that answers a ChatRequest with a whole response: the inference
// service in process (*inference.Service), the service through the mesh, a provider
// adapter (see AdapterModel), or a fake in tests.
type ChatModel interface {
	Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error)
}

// ChatModelFunc adapts a function to ChatModel.
type ChatModelFunc func(ctx context.Context, req *ChatRequest) (*ChatResponse, error)

// Chat calls f.
func (f ChatModelFunc) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	return f(ctx, req)
}

// AdapterModel runs one provider adapter in process (for example the deterministic
// provider.Mock) as a ChatModel, collecting its stream into one response. It has none of
// the service's retries, breakers or budgeting.
type AdapterModel struct {
	Adapter provider.ModelAdapter
}

// Chat streams req through the adapter and collects the result.
func (m AdapterModel) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	s, err := m.Adapter.Stream(ctx, &req.Request)
	if err != nil {
		return nil, err
	}
	resp, err := CollectStream(s)
	if err != nil {
		return nil, err
	}
	resp.Model, resp.Provider = req.Model, m.Adapter.Name()
	return resp, nil
}

// AssistantMessage returns the response as the assistant turn to append to the
// conversation.
func AssistantMessage(resp *ChatResponse) Message {
	return Message{Role: RoleAssistant, Content: resp.Text, ToolCalls: resp.ToolCalls}
}

// CollectStream reads a model stream to its end and assembles the assistant message:
// text chunks are concatenated and tool-call deltas are merged by index. It closes s.
func CollectStream(s provider.Stream) (*ChatResponse, error) {
	defer s.Close()
	var (
		text    strings.Builder
		refusal strings.Builder
		calls   = map[int]*ToolCall{}
		args    = map[int]*strings.Builder{}
		resp    = &ChatResponse{}
	)
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		text.WriteString(c.Text)
		refusal.WriteString(c.Refusal)
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
	resp.Text, resp.Refusal = text.String(), refusal.String()
	idx := make([]int, 0, len(calls))
	for i := range calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		tc := calls[i]
		tc.Arguments = args[i].String()
		if tc.Name == "" {
			return nil, fmt.Errorf("agent: model stream: tool call %d has no name", i)
		}
		resp.ToolCalls = append(resp.ToolCalls, *tc)
	}
	return resp, nil
}

func addUsage(a, b Usage) Usage {
	return Usage{InputTokens: a.InputTokens + b.InputTokens, OutputTokens: a.OutputTokens + b.OutputTokens, Estimated: a.Estimated || b.Estimated}
}
