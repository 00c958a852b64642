package inference

import (
	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/services/inference/internal/jsonscan"
)

// A fast decoder for the usual shapes of a Chat Completions request: model, messages
// whose content is a string (assistant tool calls included), sampling settings, stream
// options, function tools, a tool choice given as a mode, stop sequences and the MXP
// extensions. It builds what ParseOpenAIRequest builds from json.Unmarshal and gives up
// (ok false) on everything else: content parts, a tool choice naming a function,
// response formats, n, nulls where an object is expected, values of an unexpected type,
// and whatever jsonscan refuses. ParseOpenAIRequest then takes the general path, which
// also words the errors. FuzzParseOpenAIRequestFast checks that the two agree on every
// input the fast path accepts.

var (
	fastRequestKeys = []string{"model", "messages", "temperature", "top_p", "max_tokens",
		"max_completion_tokens", "stream", "stream_options", "tools", "tool_choice", "stop",
		"mxp_context_budget", "mxp_timeout_ms", "mxp_first_token_timeout_ms",
		// Known to the general path only:
		"response_format", "n"}
	fastMessageKeys  = []string{"role", "content", "name", "tool_call_id", "tool_calls"}
	fastToolCallKeys = []string{"index", "id", "type", "function"}
	fastCallFuncKeys = []string{"name", "arguments"}
	fastToolKeys     = []string{"type", "function"}
	fastToolFuncKeys = []string{"name", "description", "parameters"}
	fastStreamKeys   = []string{"include_usage"}
)

func parseOpenAIRequestFast(body []byte) (req *ChatRequest, stream, includeUsage, ok bool) {
	s := jsonscan.New(body)
	out := &ChatRequest{}
	var maxTokens, maxCompletion int
	ok = s.Fields(fastRequestKeys, 1, func(k int) bool {
		if k >= 14 { // for the general path
			return false
		}
		if s.Peek() == 'n' { // null leaves every field here as it is, as json does
			return s.Literal("null")
		}
		var ok bool
		switch k {
		case 0:
			return s.StrOrNull(&out.Model)
		case 1:
			return s.Array(func() bool {
				m, ok := fastMessage(s)
				out.Messages = append(out.Messages, m)
				return ok
			})
		case 2, 3:
			f, ok := s.Float()
			if k == 2 {
				out.Temperature = &f
			} else {
				out.TopP = &f
			}
			return ok
		case 4:
			maxTokens, ok = s.Integer()
			return ok
		case 5:
			maxCompletion, ok = s.Integer()
			return ok
		case 6:
			stream, ok = s.Bool()
			return ok
		case 7:
			return s.Fields(fastStreamKeys, 2, func(int) bool {
				if s.Peek() == 'n' {
					return s.Literal("null")
				}
				includeUsage, ok = s.Bool()
				return ok
			})
		case 8:
			return s.Array(func() bool {
				t, ok := fastTool(s)
				out.Tools = append(out.Tools, t)
				return ok
			})
		case 9:
			// A mode; an object naming a function is for the general path.
			var mode string
			if !s.StrOrNull(&mode) {
				return false
			}
			switch mode {
			case api.ToolChoiceAuto, api.ToolChoiceNone, api.ToolChoiceRequired, api.ToolChoiceTool:
				out.ToolChoice = &api.ToolChoice{Mode: mode}
				return true
			}
			return false
		case 10:
			if s.Peek() == '"' {
				one, ok := s.String()
				out.Stop = []string{string(one)}
				return ok
			}
			out.Stop = []string{} // json fills an empty array as empty, not nil
			return s.Array(func() bool {
				var v string
				ok := s.StrOrNull(&v)
				out.Stop = append(out.Stop, v)
				return ok
			})
		case 11:
			return s.StrOrNull(&out.ContextBudget)
		}
		n, ok := s.Integer() // 12, 13
		if k == 12 {
			out.TimeoutMs = int64(n)
		} else {
			out.FirstTokenTimeoutMs = int64(n)
		}
		return ok
	})
	if !ok || !s.End() {
		return nil, false, false, false
	}
	out.MaxTokens = maxCompletion
	if out.MaxTokens == 0 {
		out.MaxTokens = maxTokens
	}
	return out, stream, includeUsage, true
}

// fastMessage reads one message whose content is a string or null.
func fastMessage(s *jsonscan.Scanner) (api.Message, bool) {
	var m api.Message
	var role, name string
	var calls []api.ToolCall
	ok := s.Fields(fastMessageKeys, 2, func(k int) bool {
		switch k {
		case 0:
			return s.StrOrNull(&role)
		case 1:
			return s.StrOrNull(&m.Content) // content parts are not a string: refused
		case 2:
			return s.StrOrNull(&name)
		case 3:
			return s.StrOrNull(&m.ToolCallID)
		}
		if s.Peek() == 'n' {
			return s.Literal("null")
		}
		return s.Array(func() bool {
			c, ok := fastToolCall(s)
			calls = append(calls, c)
			return ok
		})
	})
	if !ok {
		return m, false
	}
	if m.Role, ok = oaiRole(role); !ok { // an unknown role: the general path words the error
		return m, false
	}
	switch m.Role {
	case api.RoleAssistant:
		m.ToolCalls = calls // only an assistant's tool calls are kept
	case api.RoleTool:
		m.Name = name
	}
	return m, true
}

// fastToolCall reads one of an assistant message's tool_calls.
func fastToolCall(s *jsonscan.Scanner) (api.ToolCall, bool) {
	var c api.ToolCall
	var typ string
	ok := s.Fields(fastToolCallKeys, 3, func(k int) bool {
		switch k {
		case 0:
			var index int // not kept, but json would reject a non-integer
			return s.IntOrNull(&index)
		case 1:
			return s.StrOrNull(&c.ID)
		case 2:
			return s.StrOrNull(&typ)
		}
		return s.Fields(fastCallFuncKeys, 4, func(k int) bool {
			if k == 0 {
				return s.StrOrNull(&c.Name)
			}
			return s.StrOrNull(&c.Arguments)
		})
	})
	return c, ok
}

// fastTool reads one of the request's tools: a function with a JSON Schema.
func fastTool(s *jsonscan.Scanner) (api.Tool, bool) {
	var t api.Tool
	var typ string
	ok := s.Fields(fastToolKeys, 2, func(k int) bool {
		if k == 0 {
			return s.StrOrNull(&typ)
		}
		return s.Fields(fastToolFuncKeys, 3, func(k int) bool {
			switch k {
			case 0:
				return s.StrOrNull(&t.Name)
			case 1:
				return s.StrOrNull(&t.Description)
			}
			raw, ok := s.Raw(3)
			t.Parameters = append([]byte(nil), raw...) // json.RawMessage keeps the exact text, null included
			return ok
		})
	})
	return t, ok && (typ == "function" || typ == "")
}
