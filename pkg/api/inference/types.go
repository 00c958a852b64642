package inference

import "encoding/json"

// Role is who wrote a message.
type Role string

// The roles of a conversation. RoleSystem messages inside Messages are merged into the
// system prompt by each adapter in the provider's native place.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Message is one turn of a conversation.
type Message struct {
	Role    Role   `json:"role"`
	Content string `json:"content,omitempty"`
	// ToolCalls are the calls an assistant message asked for.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID links a RoleTool message (a tool result) to the call it answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
	// Name is the tool's name on a RoleTool message (filled in from the call when empty).
	Name string `json:"name,omitempty"`
	// Pinned messages survive context budgeting.
	Pinned bool `json:"pinned,omitempty"`
}

// ToolCall is a model's request to run a tool. Arguments is a JSON object as text.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Tool is a function the model may call; Parameters is a JSON Schema object.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ToolChoice modes.
const (
	ToolChoiceAuto     = "auto"
	ToolChoiceNone     = "none"
	ToolChoiceRequired = "required"
	ToolChoiceTool     = "tool" // call the tool named in ToolChoice.Name
)

// ToolChoice says whether and which tool the model must call.
type ToolChoice struct {
	Mode string `json:"mode"`
	Name string `json:"name,omitempty"`
}

// Response format types.
const (
	FormatText       = "text"
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

// ResponseFormat asks for plain text, any JSON object or JSON matching Schema.
type ResponseFormat struct {
	Type   string          `json:"type"`
	Name   string          `json:"name,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

// Request is a provider-neutral chat request. Model is the provider's own model name by
// the time it reaches an adapter.
type Request struct {
	Model          string          `json:"model"`
	System         string          `json:"system,omitempty"`
	Messages       []Message       `json:"messages"`
	Temperature    *float64        `json:"temperature,omitempty"`
	TopP           *float64        `json:"top_p,omitempty"`
	MaxTokens      int             `json:"max_tokens,omitempty"`
	Stop           []string        `json:"stop,omitempty"`
	Tools          []Tool          `json:"tools,omitempty"`
	ToolChoice     *ToolChoice     `json:"tool_choice,omitempty"`
	ResponseFormat *ResponseFormat `json:"response_format,omitempty"`
}

// FinishReason says why the model stopped.
type FinishReason string

// Finish reasons, normalised across providers.
const (
	FinishStop          FinishReason = "stop"
	FinishLength        FinishReason = "length"
	FinishToolCalls     FinishReason = "tool_calls"
	FinishContentFilter FinishReason = "content_filter"
	FinishRefusal       FinishReason = "refusal"
)

// Usage is the token count reported by the provider (or estimated, see Estimated).
type Usage struct {
	InputTokens  int  `json:"input_tokens"`
	OutputTokens int  `json:"output_tokens"`
	Estimated    bool `json:"estimated,omitempty"`
}

// ToolCallDelta is a piece of a tool call. The first delta of a call carries ID and Name;
// later ones with the same Index append to Arguments.
type ToolCallDelta struct {
	Index     int    `json:"index"`
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

// Chunk is one event of a streamed result. Any field may be empty; a stream ends with a
// chunk carrying FinishReason (and usually Usage) followed by io.EOF.
type Chunk struct {
	Text         string         `json:"text,omitempty"`
	ToolCall     *ToolCallDelta `json:"tool_call,omitempty"`
	Refusal      string         `json:"refusal,omitempty"`
	FinishReason FinishReason   `json:"finish_reason,omitempty"`
	Usage        *Usage         `json:"usage,omitempty"`
}

// Response is a collected (non-streamed) result.
type Response struct {
	Text         string       `json:"text"`
	Refusal      string       `json:"refusal,omitempty"`
	ToolCalls    []ToolCall   `json:"tool_calls,omitempty"`
	FinishReason FinishReason `json:"finish_reason"`
	Usage        Usage        `json:"usage"`
}
