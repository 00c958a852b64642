package agent

import (
	"context"
	"encoding/json"
)

// Roles of a chat message.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one turn of a conversation with a model, in the OpenAI-compatible shape the
// inference service speaks.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`   // assistant: tools the model wants run
	ToolCallID string     `json:"tool_call_id,omitempty"` // tool: which call this answers
	Name       string     `json:"name,omitempty"`         // tool: the tool's name
}

// ToolCall is a model's request to run one tool.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// ChatRequest asks a model for the next message of a conversation.
type ChatRequest struct {
	Model       string     `json:"model,omitempty"` // empty: the service's default
	Messages    []Message  `json:"messages"`
	Tools       []ToolSpec `json:"tools,omitempty"`
	MaxTokens   int        `json:"max_tokens,omitempty"`
	Temperature *float64   `json:"temperature,omitempty"`
}

// Usage counts the tokens a request used.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Add returns the sum of u and v.
func (u Usage) Add(v Usage) Usage {
	return Usage{u.PromptTokens + v.PromptTokens, u.CompletionTokens + v.CompletionTokens, u.TotalTokens + v.TotalTokens}
}

// ChatResponse is a model's answer: a message (text, tool calls, or both) and why it
// stopped.
type ChatResponse struct {
	Model        string  `json:"model,omitempty"`
	Message      Message `json:"message"`
	FinishReason string  `json:"finish_reason,omitempty"` // "stop", "tool_calls", "length"
	Usage        Usage   `json:"usage"`
}

// ChatModel is anything that answers a ChatRequest: the inference service through the
// mesh, or a fake in tests.
type ChatModel interface {
	Chat(ctx context.Context, req ChatRequest) (ChatResponse, error)
}

// ChatModelFunc adapts a function to ChatModel.
type ChatModelFunc func(ctx context.Context, req ChatRequest) (ChatResponse, error)

// Chat calls f.
func (f ChatModelFunc) Chat(ctx context.Context, req ChatRequest) (ChatResponse, error) {
	return f(ctx, req)
}
