package llm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// fakeMesh stands in for a connected agent: it records the stream it is asked to open and
// plays the service's side of it (the frames themselves are the core's, tested there and
// end to end in examples/integration).
type fakeMesh struct {
	refuse error // returned by openStream
	stream *fakeChunks

	to   string
	kind mxp.StreamKind
	data []byte
}

func (m *fakeMesh) CallJSON(ctx context.Context, to string, req, resp any) error {
	return errors.New("fakeMesh: no calls")
}

func (m *fakeMesh) openStream(_ context.Context, to string, kind mxp.StreamKind, data []byte) (chunkStream, error) {
	m.to, m.kind, m.data = to, kind, append([]byte(nil), data...)
	if m.refuse != nil {
		return nil, m.refuse
	}
	return m.stream, nil
}

// fakeChunks yields its chunks, then end (io.EOF when nil); with hold it blocks after
// the chunks until closed, as a stream the service has not ended.
type fakeChunks struct {
	chunks []string
	end    error
	hold   bool

	mu     sync.Mutex
	closes int
	closed chan struct{}
}

func (s *fakeChunks) Recv(ctx context.Context) ([]byte, error) {
	if len(s.chunks) > 0 {
		c := s.chunks[0]
		s.chunks = s.chunks[1:]
		return []byte(c), nil
	}
	if s.hold {
		select {
		case <-s.closed:
			return nil, agent.Errorf(agent.CodeCanceled, "stream closed")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.end != nil {
		return nil, s.end
	}
	return nil, io.EOF
}

func (s *fakeChunks) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closes == 0 {
		close(s.closed)
	}
	s.closes++
	return nil
}

func (s *fakeChunks) closeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closes
}

func TestModelStreamOverTheMesh(t *testing.T) {
	const summary = `{"model":"mock","provider":"mock","finish_reason":"stop","usage":{"input_tokens":2,"output_tokens":2}}`
	tests := []struct {
		name      string
		refuse    error
		stream    *fakeChunks
		want      []inference.Chunk
		wantCode  agent.Code // of the open (refused) or of the Recv that ends the stream
		wantModel string
		closes    int // Close calls that reach the mesh stream, the test's own Close included
	}{
		{
			name: "text, tool call, finish, summary",
			stream: &fakeChunks{chunks: []string{`{"text":"Hi"}`, `{"tool_call":{"index":0,"id":"c1","name":"shout","arguments":"{}"}}`,
				`{"finish_reason":"stop","usage":{"input_tokens":2,"output_tokens":2}}`, summary}},
			want: []inference.Chunk{{Text: "Hi"}, {ToolCall: &inference.ToolCallDelta{Index: 0, ID: "c1", Name: "shout", Arguments: "{}"}},
				{FinishReason: inference.FinishStop, Usage: &inference.Usage{InputTokens: 2, OutputTokens: 2}}},
			wantModel: "mock",
		},
		{
			name:     "the service's error code",
			stream:   &fakeChunks{chunks: []string{`{"text":"Hi"}`}, end: agent.Errorf("provider_error", "upstream reset")},
			want:     []inference.Chunk{{Text: "Hi"}},
			wantCode: "provider_error",
		},
		{
			name:     "open refused",
			refuse:   agent.Errorf(agent.CodeUnreachable, "nothing answers"),
			wantCode: agent.CodeUnreachable,
		},
		{
			name:     "a chunk that is not JSON",
			stream:   &fakeChunks{chunks: []string{`{"text":"Hi"}`, `not json`}, hold: true},
			want:     []inference.Chunk{{Text: "Hi"}},
			wantCode: agent.CodeInvalidPayload,
			closes:   1, // the stream it gave up on; its own Close after that is a no-op
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stream != nil {
				tc.stream.closed = make(chan struct{})
			}
			mesh := &fakeMesh{refuse: tc.refuse, stream: tc.stream}
			model := MeshModel{conn: mesh}
			req := NewChatRequest("mock", Message{Role: RoleUser, Content: "hello"})
			s, err := model.OpenStream(context.Background(), &req)
			var sent ChatRequest
			if mesh.to != inferenceService || mesh.kind != mxp.StreamKindJSON || json.Unmarshal(mesh.data, &sent) != nil ||
				sent.Model != "mock" || len(sent.Messages) != 1 || sent.Messages[0].Content != "hello" {
				t.Fatalf("stream opened to %s kind %d with %q, want the ChatRequest to the inference service", mesh.to, mesh.kind, mesh.data)
			}
			if tc.refuse != nil {
				if agent.CodeOf(err) != tc.wantCode {
					t.Fatalf("open: %v (code %s), want %s", err, agent.CodeOf(err), tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []inference.Chunk
			for {
				c, err := s.Recv()
				if errors.Is(err, io.EOF) {
					if tc.wantCode != "" {
						t.Fatalf("clean end, want %s", tc.wantCode)
					}
					break
				}
				if err != nil {
					if agent.CodeOf(err) != tc.wantCode {
						t.Fatalf("recv: %v (code %s), want %s", err, agent.CodeOf(err), tc.wantCode)
					}
					break
				}
				got = append(got, c)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tc.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("chunks %s, want %s", gotJSON, wantJSON)
			}
			if s.Model() != tc.wantModel || (tc.wantModel != "" && s.Provider() != "mock") {
				t.Errorf("summary %s/%s, want model %q", s.Model(), s.Provider(), tc.wantModel)
			}
			if err := s.Close(); err != nil {
				t.Errorf("close after the end: %v", err)
			}
			if n := tc.stream.closeCount(); n != tc.closes {
				t.Errorf("the mesh stream was closed %d times, want %d", n, tc.closes)
			}
		})
	}
}

// TestModelStreamCloseCancels: closing before the end closes the mesh stream (which
// cancels the request at the edge), once.
func TestModelStreamCloseCancels(t *testing.T) {
	st := &fakeChunks{chunks: []string{`{"text":"one"}`}, hold: true, closed: make(chan struct{})}
	model := MeshModel{conn: &fakeMesh{stream: st}}
	req := NewChatRequest("mock", Message{Role: RoleUser, Content: "hello"})
	s, err := model.OpenStream(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Recv(); err != nil || c.Text != "one" {
		t.Fatalf("first chunk %+v, %v", c, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := st.closeCount(); n != 1 {
		t.Fatalf("the mesh stream was closed %d times, want 1", n)
	}
	var _ ChatStreamer = model
	var _ ChatModel = model
}

// FuzzDecodeModelChunk: any chunk body either decodes or is an invalid_payload error.
func FuzzDecodeModelChunk(f *testing.F) {
	for _, s := range []string{`{"text":"hi"}`, `{"tool_call":{"index":0,"id":"a","name":"t","arguments":"{"}}`,
		`{"finish_reason":"stop","usage":{"input_tokens":1}}`, `{"model":"m","provider":"p"}`, `null`, `[`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeModelChunk(b)
		if err != nil {
			if agent.CodeOf(err) != agent.CodeInvalidPayload {
				t.Fatalf("error %v has code %s", err, agent.CodeOf(err))
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("%q decoded to %+v", b, c)
		}
	})
}
