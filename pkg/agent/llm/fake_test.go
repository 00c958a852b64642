package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mxp-mesh/mesh/pkg/api/inference"
)

// scriptAdapter is a deterministic model adapter for the toolkit's tests (the inference
// service's mock provider lives in the service, which this package must not import):
//   - a prompt "use <tool> <json>" asks for that tool with those arguments;
//   - a tool result answers "Tool <name> returned: <result>.";
//   - anything else answers "Reply to: <prompt>", one chunk per word.
type scriptAdapter struct{}

func (scriptAdapter) Name() string { return "script" }

func (scriptAdapter) Stream(_ context.Context, req *inference.Request) (inference.Stream, error) {
	if len(req.Messages) == 0 {
		return nil, errors.New("script: no messages")
	}
	last := req.Messages[len(req.Messages)-1]
	usage := &inference.Usage{InputTokens: len(req.Messages), OutputTokens: 1}
	var chunks []inference.Chunk
	switch {
	case last.Role == RoleTool:
		chunks = []inference.Chunk{{Text: fmt.Sprintf("Tool %s returned: %s.", last.Name, last.Content)}}
	case strings.HasPrefix(last.Content, "use "):
		name, args, _ := strings.Cut(strings.TrimPrefix(last.Content, "use "), " ")
		chunks = []inference.Chunk{{ToolCall: &inference.ToolCallDelta{ID: "call-1", Name: name, Arguments: args}},
			{FinishReason: inference.FinishToolCalls, Usage: usage}}
		return &sliceStream{chunks: chunks}, nil
	default:
		for i, w := range strings.Fields("Reply to: " + last.Content) {
			if i > 0 {
				w = " " + w
			}
			chunks = append(chunks, inference.Chunk{Text: w})
		}
	}
	chunks = append(chunks, inference.Chunk{FinishReason: inference.FinishStop, Usage: usage})
	return &sliceStream{chunks: chunks}, nil
}

type sliceStream struct {
	chunks []inference.Chunk
	err    error
	closed bool
}

func (s *sliceStream) Recv() (inference.Chunk, error) {
	if len(s.chunks) == 0 {
		if s.err != nil {
			return inference.Chunk{}, s.err
		}
		return inference.Chunk{}, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *sliceStream) Close() error { s.closed = true; return nil }
