package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
)

// Mock is a deterministic provider that needs no network: the same request always gives
// the same stream. It is the default of `mxp dev` and the provider of tests and
// benchmarks.
//
// Behaviour, in order:
//   - the last message is a tool result: reply "Tool NAME returned: CONTENT.";
//   - tools are offered, tool choice is not "none", and tool choice forces a call or the
//     last user message names a tool: call that tool (the first one named, or the forced
//     one). Arguments are the first JSON object in the prompt, else {}; the call id is
//     derived from the tool name and prompt, so it is stable;
//   - a JSON response format: reply {"reply": PROMPT};
//   - otherwise reply "Mock reply to: PROMPT".
//
// The reply is streamed one word per chunk, stops early at MaxTokens (finish "length")
// or at a stop sequence, and reports usage with EstimateRequest for the input.
type Mock struct {
	// TokenDelay is slept before each chunk (0 for none), to simulate generation time.
	TokenDelay time.Duration
}

// Name implements ModelAdapter.
func (m *Mock) Name() string { return "mock" }

// Stream implements ModelAdapter.
func (m *Mock) Stream(ctx context.Context, req *api.Request) (api.Stream, error) {
	if len(req.Messages) == 0 {
		return nil, Errorf(CodeInvalidRequest, "no messages")
	}
	chunks := MockChunks(req)
	i := 0
	return &funcStream{ready: func() bool { return m.TokenDelay == 0 && i < len(chunks) }, next: func() (api.Chunk, error) {
		if i >= len(chunks) {
			return api.Chunk{}, io.EOF
		}
		if m.TokenDelay > 0 {
			t := time.NewTimer(m.TokenDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return api.Chunk{}, AsError(ctx.Err())
			case <-t.C:
			}
		} else if err := ctx.Err(); err != nil {
			return api.Chunk{}, AsError(err)
		}
		c := chunks[i]
		i++
		return c, nil
	}}, nil
}

type funcStream struct {
	next  func() (api.Chunk, error)
	ready func() bool
}

func (s *funcStream) Recv() (api.Chunk, error) { return s.next() }
func (s *funcStream) Close() error             { return nil }
func (s *funcStream) Buffered() bool           { return s.ready() }

// MockChunks returns the whole stream the mock gives for req.
func MockChunks(req *api.Request) []api.Chunk {
	usage := &api.Usage{InputTokens: EstimateRequest(req)}
	last := req.Messages[len(req.Messages)-1]
	prompt := lastUserText(req.Messages)
	if last.Role != api.RoleTool {
		if tool, ok := mockToolToCall(req, prompt); ok {
			args := firstJSONObject(prompt)
			h := fnv.New64a()
			h.Write([]byte(tool + "\x00" + prompt))
			id := fmt.Sprintf("call_%012x", h.Sum64()&0xffffffffffff)
			usage.OutputTokens = EstimateTokens(tool) + EstimateTokens(args)
			return []api.Chunk{
				{ToolCall: &api.ToolCallDelta{Index: 0, ID: id, Name: tool}},
				{ToolCall: &api.ToolCallDelta{Index: 0, Arguments: args}},
				{FinishReason: api.FinishToolCalls, Usage: usage},
			}
		}
	}
	var reply string
	switch {
	case last.Role == api.RoleTool:
		name := last.Name
		if name == "" {
			name = toolNames(req.Messages)[last.ToolCallID]
		}
		reply = fmt.Sprintf("Tool %s returned: %s.", name, last.Content)
	case req.ResponseFormat != nil && (req.ResponseFormat.Type == api.FormatJSONObject || req.ResponseFormat.Type == api.FormatJSONSchema):
		b, _ := json.Marshal(map[string]string{"reply": prompt})
		reply = string(b)
	default:
		reply = "Mock reply to: " + prompt
	}
	finish := api.FinishStop
	for _, s := range req.Stop {
		if s != "" {
			if i := strings.Index(reply, s); i >= 0 {
				reply = reply[:i]
			}
		}
	}
	words := splitWords(reply)
	if req.MaxTokens > 0 && len(words) > req.MaxTokens {
		words, finish = words[:req.MaxTokens], api.FinishLength
	}
	out := make([]api.Chunk, 0, len(words)+1)
	for _, w := range words {
		out = append(out, api.Chunk{Text: w})
	}
	usage.OutputTokens = len(words)
	return append(out, api.Chunk{FinishReason: finish, Usage: usage})
}

func lastUserText(msgs []api.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == api.RoleUser {
			return msgs[i].Content
		}
	}
	return ""
}

func mockToolToCall(req *api.Request, prompt string) (string, bool) {
	if len(req.Tools) == 0 {
		return "", false
	}
	mode := api.ToolChoiceAuto
	if req.ToolChoice != nil {
		mode = req.ToolChoice.Mode
	}
	switch mode {
	case api.ToolChoiceNone:
		return "", false
	case api.ToolChoiceTool:
		return req.ToolChoice.Name, true
	}
	best, at := "", -1
	for _, t := range req.Tools {
		if i := strings.Index(prompt, t.Name); i >= 0 && (at < 0 || i < at) {
			best, at = t.Name, i
		}
	}
	if at >= 0 {
		return best, true
	}
	if mode == api.ToolChoiceRequired {
		return req.Tools[0].Name, true
	}
	return "", false
}

// firstJSONObject returns the first balanced {...} in s that parses as a JSON object,
// or "{}".
func firstJSONObject(s string) string {
	for start := strings.IndexByte(s, '{'); start >= 0; {
		dec := json.NewDecoder(strings.NewReader(s[start:]))
		var obj map[string]any
		if dec.Decode(&obj) == nil {
			b, _ := json.Marshal(obj)
			return string(b)
		}
		next := strings.IndexByte(s[start+1:], '{')
		if next < 0 {
			break
		}
		start += 1 + next
	}
	return "{}"
}

// splitWords splits s after each run of spaces, so joining the parts gives s back.
func splitWords(s string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		j := i
		for j < len(s) && s[j] == ' ' {
			j++
		}
		out = append(out, s[:j])
		s = s[j:]
	}
	return out
}
