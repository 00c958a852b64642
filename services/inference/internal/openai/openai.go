// Package openai declares, once, the OpenAI Chat Completions wire objects that both sides
// of the inference service read and write: the gateway's OpenAI-compatible API
// (services/inference, which decodes requests and encodes responses and chunks) and the
// OpenAI adapter (services/inference/provider, which encodes requests and decodes
// chunks). A tool call, a tool, an error body and the stream chunk (Chunk, Choice,
// Delta, Usage) are these types on both sides. Delta.Content is a plain string (omitted
// when empty, which is when the gateway leaves it out) so that decoding a token's chunk
// allocates no pointer; FinishReason is a pointer because the gateway writes null on
// every token's chunk. The adapter's hand-written fast path (provider/fast_decode.go)
// fills a Chunk as json.Unmarshal would.
//
// Still declared by each side: the request and its messages. The gateway decodes what
// any client may send (content as a string or parts, stop as a string or list, a tool
// choice and response format of any shape, n, the mxp_* extensions) with a hand-written
// fast path and json.Unmarshal; the adapter writes the canonical request with omitempty
// fields in the order of its golden file (provider/testdata/openai_request.json).
package openai

import "encoding/json"

// ToolCall is one tool call of an assistant message, or a fragment of one in a stream
// chunk's delta (Index set, Function.Arguments a piece of the JSON text).
type ToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// Tool is a function a request offers the model.
type Tool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	} `json:"function"`
}

// ErrorBody is an error response: {"error":{"message","type","param","code"}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error is the error object of an ErrorBody and of a stream's error event. Code is a
// string from this gateway; OpenAI and compatible servers also send null or a number.
type Error struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    any     `json:"code"`
}

// Chunk is one chat.completion.chunk event of a stream. The gateway writes ID, Object,
// Created, Model and Choices always, Usage in the last chunk when asked for; an upstream
// sends Error instead of choices when it fails mid-stream.
type Chunk struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
	Error   *Error   `json:"error,omitempty"`
}

// Choice is a chunk's choice: the delta of choice Index, and why it finished (null until
// it does).
type Choice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is what a chunk adds to a choice's message: the role (first chunk), text,
// refusal text or tool-call fragments; each omitted when empty.
type Delta struct {
	Role      string     `json:"role,omitempty"`
	Content   string     `json:"content,omitempty"`
	Refusal   string     `json:"refusal,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// Usage counts a request's tokens (a response's usage, a stream's last chunk).
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}
