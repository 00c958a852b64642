package provider

import (
	"github.com/mxp-mesh/mesh/services/inference/internal/jsonscan"
	"github.com/mxp-mesh/mesh/services/inference/internal/openai"
)

// Fast decoders for the per-token events of streams: OpenAI's chat.completion.chunk,
// Anthropic's content_block_delta, Gemini's GenerateContentResponse and Ollama's
// /api/chat lines, which a gateway decodes once per token. Each fills the
// same struct json.Unmarshal would and gives up (returns false) on anything it does not
// handle exactly like encoding/json: non-UTF-8 strings, escaped keys, non-integer
// numbers, non-ASCII or differently-cased keys, duplicate keys, deep nesting, invalid
// JSON, and the rarer objects of each format (OpenAI's tool calls and errors, Anthropic's
// message, content block, usage and error, Gemini's function calls, prompt feedback and
// error, Ollama's tool calls). The caller then runs json.Unmarshal. The Fuzz*FastDecode
// tests check the two agree on every input the fast path accepts.

var (
	fastTopKeys    = []string{"choices", "usage", "error"}
	fastChoiceKeys = []string{"index", "delta", "finish_reason"}
	fastDeltaKeys  = []string{"content", "refusal", "tool_calls"}
	fastUsageKeys  = []string{"prompt_tokens", "completion_tokens"}
)

// decodeOpenAIChunkFast fills c (which must be zero, Choices may have capacity) from data:
// what the adapter reads (choices, usage's prompt and completion tokens, a null error) as
// json.Unmarshal fills it. The chunk's id, object, created and model, a delta's role and
// usage's total_tokens are skipped: the adapter does not read them, and decoding them
// would allocate strings per token.
func decodeOpenAIChunkFast(data []byte, c *openai.Chunk) bool {
	s := jsonscan.New(data)
	ok := s.Fields(fastTopKeys, 1, func(k int) bool {
		switch k {
		case 0: // choices
			if s.Peek() == 'n' {
				c.Choices = nil
				return s.Literal("null")
			}
			return s.Array(func() bool {
				c.Choices = append(c.Choices, openai.Choice{})
				ch := &c.Choices[len(c.Choices)-1]
				if s.Peek() == 'n' {
					return s.Literal("null")
				}
				return s.Fields(fastChoiceKeys, 3, func(k int) bool {
					switch k {
					case 0:
						return s.IntOrNull(&ch.Index)
					case 2:
						return finishReason(s, &ch.FinishReason)
					}
					if s.Peek() == 'n' {
						return s.Literal("null")
					}
					return s.Fields(fastDeltaKeys, 4, func(k int) bool {
						switch k {
						case 0:
							return s.StrOrNull(&ch.Delta.Content)
						case 1:
							return s.StrOrNull(&ch.Delta.Refusal)
						}
						return false // tool calls: the general decoder
					})
				})
			})
		case 1: // usage
			if s.Peek() == 'n' {
				return s.Literal("null")
			}
			c.Usage = &openai.Usage{}
			return s.Fields(fastUsageKeys, 2, func(k int) bool {
				if k == 0 {
					return s.IntOrNull(&c.Usage.PromptTokens)
				}
				return s.IntOrNull(&c.Usage.CompletionTokens)
			})
		}
		return s.Peek() == 'n' && s.Literal("null") // error: only null is handled here
	})
	return ok && s.End()
}

// finishReasons are the finish reasons OpenAI sends; finishReason points at these rather
// than allocating a pointer for each.
var finishReasons = [...]string{"stop", "length", "tool_calls", "content_filter", "function_call"}

// finishReason reads a choice's finish_reason as json.Unmarshal reads it into a *string:
// null leaves *p as it is (nil: every token's chunk, no allocation); a string is stored
// (once per stream), a known one in finishReasons.
func finishReason(s *jsonscan.Scanner, p **string) bool {
	if s.Peek() == 'n' {
		return s.Literal("null")
	}
	var v string
	if !s.StrOrNull(&v) {
		return false
	}
	for i := range finishReasons {
		if finishReasons[i] == v {
			*p = &finishReasons[i]
			return true
		}
	}
	*p = new(v)
	return true
}

var (
	fastAnthropicKeys = []string{"type", "index", "delta",
		// Left to json.Unmarshal:
		"message", "content_block", "usage", "error"}
	fastAnthropicDeltaKeys = []string{"type", "text", "partial_json", "stop_reason"}
)

// decodeAnthropicEventFast fills e (which must be zero) from a Messages API stream event
// whose fields are the type, the index and a delta: content_block_delta (one per token),
// content_block_stop and ping. Events with a message, content block, usage or error
// object are left to json.Unmarshal (it returns false), as is anything jsonscan refuses.
// FuzzAnthropicFastDecode checks the two agree on every input this accepts.
func decodeAnthropicEventFast(data []byte, e *anEvent) bool {
	s := jsonscan.New(data)
	ok := s.Fields(fastAnthropicKeys, 1, func(k int) bool {
		switch k {
		case 0:
			return s.StrOrNull(&e.Type)
		case 1:
			return s.IntOrNull(&e.Index)
		case 2:
			if s.Peek() == 'n' {
				e.Delta = nil
				return s.Literal("null")
			}
			d := &anDelta{}
			e.Delta = d
			return s.Fields(fastAnthropicDeltaKeys, 2, func(k int) bool {
				switch k {
				case 0:
					return s.StrOrNull(&d.Type)
				case 1:
					return s.StrOrNull(&d.Text)
				case 2:
					return s.StrOrNull(&d.PartialJSON)
				}
				return s.StrOrNull(&d.StopReason)
			})
		}
		return false
	})
	return ok && s.End()
}

var (
	fastOllamaKeys = []string{"message", "done", "done_reason", "prompt_eval_count",
		"eval_count", "error"}
	fastOllamaMessageKeys = []string{"content",
		// Left to json.Unmarshal:
		"tool_calls"}
)

// decodeOllamaChunkFast fills c (which must be zero) from one /api/chat line whose
// message, if any, has no tool calls.
func decodeOllamaChunkFast(data []byte, c *olChunk) bool {
	s := jsonscan.New(data)
	ok := s.Fields(fastOllamaKeys, 1, func(k int) bool {
		null := s.Peek() == 'n'
		if null { // null leaves every field here as it is, as json does
			return s.Literal("null")
		}
		var ok bool
		switch k {
		case 0:
			m := &olReply{}
			c.Message = m
			return s.Fields(fastOllamaMessageKeys, 2, func(k int) bool {
				return k == 0 && s.StrOrNull(&m.Content)
			})
		case 1:
			c.Done, ok = s.Bool()
			return ok
		case 2:
			return s.StrOrNull(&c.DoneReason)
		case 3:
			c.PromptEvalCount, ok = s.Integer()
			return ok
		case 4:
			c.EvalCount, ok = s.Integer()
			return ok
		}
		return s.StrOrNull(&c.Error)
	})
	return ok && s.End()
}

var (
	fastGeminiKeys = []string{"candidates", "usageMetadata",
		// Left to json.Unmarshal:
		"promptFeedback", "error"}
	fastGeminiCandidateKeys = []string{"content", "finishReason"}
	fastGeminiContentKeys   = []string{"role", "parts"}
	fastGeminiPartKeys      = []string{"text", "thought",
		// Left to json.Unmarshal:
		"functionCall", "functionResponse"}
	fastGeminiUsageKeys = []string{"promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount"}
)

// decodeGeminiChunkFast fills c (which must be zero) from one GenerateContentResponse
// whose parts are text (or thoughts), without prompt feedback or an error.
func decodeGeminiChunkFast(data []byte, c *gmChunk) bool {
	s := jsonscan.New(data)
	ok := s.Fields(fastGeminiKeys, 1, func(k int) bool {
		if k >= 2 {
			return false
		}
		if s.Peek() == 'n' { // null leaves the field as it is, as json does
			return s.Literal("null")
		}
		if k == 1 {
			u := &gmUsage{}
			c.UsageMetadata = u
			return s.Fields(fastGeminiUsageKeys, 2, func(k int) bool {
				switch k {
				case 0:
					return s.IntOrNull(&u.PromptTokenCount)
				case 1:
					return s.IntOrNull(&u.CandidatesTokenCount)
				}
				return s.IntOrNull(&u.ThoughtsTokenCount)
			})
		}
		c.Candidates = []gmCandidate{} // json fills an empty array as empty, not nil
		return s.Array(func() bool {
			c.Candidates = append(c.Candidates, gmCandidate{})
			return geminiCandidateFast(s, &c.Candidates[len(c.Candidates)-1])
		})
	})
	return ok && s.End()
}

func geminiCandidateFast(s *jsonscan.Scanner, cand *gmCandidate) bool {
	return s.Fields(fastGeminiCandidateKeys, 2, func(k int) bool {
		if k == 1 {
			return s.StrOrNull(&cand.FinishReason)
		}
		if s.Peek() == 'n' {
			return s.Literal("null")
		}
		return s.Fields(fastGeminiContentKeys, 3, func(k int) bool {
			if k == 0 {
				return s.StrOrNull(&cand.Content.Role)
			}
			if s.Peek() == 'n' {
				return s.Literal("null")
			}
			cand.Content.Parts = []gmPart{}
			return s.Array(func() bool {
				cand.Content.Parts = append(cand.Content.Parts, gmPart{})
				p := &cand.Content.Parts[len(cand.Content.Parts)-1]
				return s.Fields(fastGeminiPartKeys, 4, func(k int) bool {
					switch {
					case k >= 2:
						return false
					case k == 0:
						return s.StrOrNull(&p.Text)
					case s.Peek() == 'n':
						return s.Literal("null")
					}
					var ok bool
					p.Thought, ok = s.Bool()
					return ok
				})
			})
		})
	})
}
