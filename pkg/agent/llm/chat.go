package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mxp-mesh/mesh/pkg/api/inference"
)

// The conversation types are the inference wire contract (pkg/api/inference), the one
// definition the inference service also uses, so a request built here is exactly what the
// service receives. The aliases are a deliberate public compatibility shim: they are the
// SDK's names for agent authors (llm.Message, llm.ChatRequest, ...), the same types, so a
// value converts to and from the contract without copying.
type (
	// ChatRequest asks a model for the next message of a conversation; the embedded
	// inference.Request holds the model, messages and tools.
	ChatRequest = inference.ChatRequest
	// ChatResponse is a model's complete answer: text and/or tool calls, why it stopped,
	// the tokens used, and which model and provider answered.
	ChatResponse = inference.ChatResponse
	// Message is one turn of a conversation with a model.
	Message = inference.Message
	// Role is who wrote a message.
	Role = inference.Role
	// ToolCall is a model's request to run one tool; Arguments is a JSON object as text.
	ToolCall = inference.ToolCall
	// Usage counts the tokens a request used.
	Usage = inference.Usage
	// FinishReason says why the model stopped.
	FinishReason = inference.FinishReason
	// Chunk is one piece of a streamed answer.
	Chunk = inference.Chunk
	// Response is the answer part of a ChatResponse.
	Response = inference.Response
	// Stream is a model's answer as it is generated: Recv until io.EOF, then Close.
	Stream = inference.Stream
)

// Roles of a conversation.
const (
	RoleSystem    = inference.RoleSystem
	RoleUser      = inference.RoleUser
	RoleAssistant = inference.RoleAssistant
	RoleTool      = inference.RoleTool
)

// Why a model stopped (ChatResponse.FinishReason).
const (
	FinishStop          = inference.FinishStop
	FinishLength        = inference.FinishLength
	FinishToolCalls     = inference.FinishToolCalls
	FinishContentFilter = inference.FinishContentFilter
	FinishRefusal       = inference.FinishRefusal
)

// NewChatRequest returns a request for model with the given messages.
func NewChatRequest(model string, messages ...Message) ChatRequest {
	return ChatRequest{Request: inference.Request{Model: model, Messages: messages}}
}

// ChatModel is anything that answers a ChatRequest with a whole response: the mesh's
// inference service (Mesh), the service in process (its *Service has this method), a
// model adapter (see AdapterModel), or a fake in tests.
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
// inference.Mock) as a ChatModel, collecting its stream into one response. It has none of
// the service's retries, breakers or budgeting.
type AdapterModel struct {
	Adapter inference.ModelAdapter
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
func CollectStream(s Stream) (*ChatResponse, error) {
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
			return nil, fmt.Errorf("llm: model stream: tool call %d has no name", i)
		}
		resp.ToolCalls = append(resp.ToolCalls, *tc)
	}
	return resp, nil
}

func addUsage(a, b Usage) Usage {
	return Usage{InputTokens: a.InputTokens + b.InputTokens, OutputTokens: a.OutputTokens + b.OutputTokens, Estimated: a.Estimated || b.Estimated}
}
