package provider

import "github.com/mxp-mesh/mesh/services/inference/internal/jsonscan"

// A fast decoder for the common shape of chat.completion.chunk events, which a gateway
// decodes once per token. It fills the same oaChunk json.Unmarshal would and gives up
// (returns false) on anything it does not handle exactly like encoding/json: non-UTF-8
// strings, escaped keys, tool calls, error objects, non-integer numbers, non-ASCII or
// differently-cased keys, duplicate keys, deep nesting and invalid JSON. The caller then
// runs json.Unmarshal. FuzzOpenAIFastDecode checks the two agree on every input the fast
// path accepts.

var (
	fastTopKeys    = []string{"choices", "usage", "error"}
	fastChoiceKeys = []string{"index", "delta", "finish_reason"}
	fastDeltaKeys  = []string{"content", "refusal", "tool_calls"}
	fastUsageKeys  = []string{"prompt_tokens", "completion_tokens"}
)

// decodeOpenAIChunkFast fills c (which must be zero, Choices may have capacity) from data.
func decodeOpenAIChunkFast(data []byte, c *oaChunk) bool {
	s := jsonscan.New(data)
	var seenTop uint64
	ok := s.Object(func(key []byte) bool {
		k, ok := jsonscan.Key(key, fastTopKeys, &seenTop)
		if !ok {
			return false
		}
		switch k {
		case 0: // choices
			if s.Peek() == 'n' {
				c.Choices = nil
				return s.Literal("null")
			}
			return s.Array(func() bool {
				c.Choices = append(c.Choices, oaChoice{})
				ch := &c.Choices[len(c.Choices)-1]
				if s.Peek() == 'n' {
					return s.Literal("null")
				}
				var seen uint64
				return s.Object(func(key []byte) bool {
					k, ok := jsonscan.Key(key, fastChoiceKeys, &seen)
					if !ok {
						return false
					}
					switch k {
					case 0:
						if s.Peek() == 'n' {
							return s.Literal("null")
						}
						ch.Index, ok = s.Integer()
						return ok
					case 1:
						if s.Peek() == 'n' {
							return s.Literal("null")
						}
						var seenD uint64
						return s.Object(func(key []byte) bool {
							k, ok := jsonscan.Key(key, fastDeltaKeys, &seenD)
							switch {
							case !ok || k == 2: // tool calls: the general decoder
								return false
							case k == 0:
								return s.StrOrNull(&ch.Delta.Content)
							case k == 1:
								return s.StrOrNull(&ch.Delta.Refusal)
							}
							return s.Skip(1)
						})
					case 2:
						return s.StrOrNull(&ch.FinishReason)
					}
					return s.Skip(1)
				})
			})
		case 1: // usage
			if s.Peek() == 'n' {
				return s.Literal("null")
			}
			c.Usage = &struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			}{}
			var seen uint64
			return s.Object(func(key []byte) bool {
				k, ok := jsonscan.Key(key, fastUsageKeys, &seen)
				if !ok {
					return false
				}
				switch k {
				case 0, 1:
					if s.Peek() == 'n' {
						return s.Literal("null")
					}
					n, ok := s.Integer()
					if k == 0 {
						c.Usage.PromptTokens = n
					} else {
						c.Usage.CompletionTokens = n
					}
					return ok
				}
				return s.Skip(1)
			})
		case 2: // error: only null is handled here
			return s.Peek() == 'n' && s.Literal("null")
		}
		return s.Skip(1)
	})
	return ok && s.End()
}
