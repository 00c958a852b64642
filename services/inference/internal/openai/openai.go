// Package openai declares, once, the OpenAI Chat Completions wire objects that both sides
// of the inference service read and write the same way: the gateway's OpenAI-compatible
// API (services/inference, which decodes requests and encodes responses and chunks) and
// the OpenAI and Ollama adapters (services/inference/provider, which encode requests and
// decode responses). A tool call, a tool and an error body are these types on both sides.
//
// The request, message and stream-chunk objects stay declared by each side on purpose:
// the gateway decodes what any client may send (content as a string or parts, stop as a
// string or list, the mxp_* extensions) and must write chunks byte for byte as OpenAI does
// ("finish_reason": null, a role-only first delta), while the adapters write the
// canonical request and decode each token's chunk through a hand-written fast path into
// plain strings (no pointer per token). One struct for both would cost the adapters an
// allocation per token or change what the gateway writes.
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

// ErrorBody is an error response: {"error":{"message","type","param","code"}}. Code is a
// string from this gateway; OpenAI and compatible servers also send null or a number.
type ErrorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    any     `json:"code"`
	} `json:"error"`
}
