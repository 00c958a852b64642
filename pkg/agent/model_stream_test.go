package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// streamEdge plays the edge's side of a stream to the inference service over a pipe: it
// checks the StreamOpen, answers it (Response, or the Error in refuse), sends chunks and
// the close it is given, and reports what the agent sent after.
type streamEdge struct {
	end     *pipeEnd
	opened  chan mxp.StreamOpenPayload
	closes  chan mxp.StreamClosePayload
	refuse  *mxp.ErrorPayload
	chunks  []string
	closeEP *mxp.ErrorPayload
	hold    bool // send no close: the agent ends the stream
}

func (e *streamEdge) serve(t *testing.T) {
	ctx := context.Background()
	for {
		f, err := e.end.Receive(ctx)
		if err != nil {
			return
		}
		switch f.Type {
		case mxp.TypeStreamOpen:
			p, err := mxp.DecodeStreamOpen(f.Payload)
			if err != nil {
				t.Errorf("edge: StreamOpen: %v", err)
				return
			}
			p.Data = append([]byte(nil), p.Data...)
			e.opened <- p
			if e.refuse != nil {
				b, _ := e.refuse.AppendPayload(nil)
				_ = e.end.Send(ctx, &mxp.Frame{Type: mxp.TypeError, MessageID: f.MessageID, Payload: b})
				continue
			}
			_ = e.end.Send(ctx, &mxp.Frame{Type: mxp.TypeResponse, MessageID: f.MessageID})
			for _, c := range e.chunks {
				b, _ := (&mxp.StreamChunkPayload{StreamID: p.StreamID, Data: []byte(c)}).AppendPayload(nil)
				_ = e.end.Send(ctx, &mxp.Frame{Type: mxp.TypeStreamChunk, MessageID: 1 << 63, Payload: b})
			}
			if !e.hold {
				b, _ := (&mxp.StreamClosePayload{StreamID: p.StreamID, Error: e.closeEP}).AppendPayload(nil)
				_ = e.end.Send(ctx, &mxp.Frame{Type: mxp.TypeStreamClose, MessageID: 1 << 63, Payload: b})
			}
		case mxp.TypeStreamClose:
			p, _ := mxp.DecodeStreamClose(f.Payload)
			e.closes <- p
		}
	}
}

func TestModelStreamOverTheMesh(t *testing.T) {
	const summary = `{"model":"mock","provider":"mock","finish_reason":"stop","usage":{"input_tokens":2,"output_tokens":2}}`
	tests := []struct {
		name      string
		edge      streamEdge
		want      []provider.Chunk
		wantCode  Code // of the open (refused) or of the Recv that ends the stream
		wantModel string
		closeSent bool // the agent sends a StreamClose (cancel) of its own
	}{
		{
			name: "text, tool call, finish, summary",
			edge: streamEdge{chunks: []string{`{"text":"Hi"}`, `{"tool_call":{"index":0,"id":"c1","name":"shout","arguments":"{}"}}`,
				`{"finish_reason":"stop","usage":{"input_tokens":2,"output_tokens":2}}`, summary}},
			want: []provider.Chunk{{Text: "Hi"}, {ToolCall: &provider.ToolCallDelta{Index: 0, ID: "c1", Name: "shout", Arguments: "{}"}},
				{FinishReason: provider.FinishStop, Usage: &provider.Usage{InputTokens: 2, OutputTokens: 2}}},
			wantModel: "mock",
		},
		{
			name:     "the service's error code",
			edge:     streamEdge{chunks: []string{`{"text":"Hi"}`}, closeEP: &mxp.ErrorPayload{Error: "upstream reset", Code: "provider_error"}},
			want:     []provider.Chunk{{Text: "Hi"}},
			wantCode: "provider_error",
		},
		{
			name:     "open refused",
			edge:     streamEdge{refuse: &mxp.ErrorPayload{Error: "nothing answers", Code: mxp.CodeUnreachable}},
			wantCode: CodeUnreachable,
		},
		{
			name:      "a chunk that is not JSON",
			edge:      streamEdge{chunks: []string{`{"text":"Hi"}`, `not json`}, hold: true},
			want:      []provider.Chunk{{Text: "Hi"}},
			wantCode:  CodeInvalidPayload,
			closeSent: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agentEnd, edgeEnd := framePipe()
			e := tc.edge
			e.end, e.opened, e.closes = edgeEnd, make(chan mxp.StreamOpenPayload, 1), make(chan mxp.StreamClosePayload, 1)
			go e.serve(t)
			l := newLink(agentEnd, mxp.NewAgentID(), quietLogger())
			t.Cleanup(func() { _ = l.Close(); edgeEnd.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			req := NewChatRequest("mock", Message{Role: RoleUser, Content: "hello"})
			s, err := openModelStream(ctx, l, &req)
			open := <-e.opened
			var sent ChatRequest
			if open.Target != mxp.ServiceInference || open.Kind != mxp.StreamKindJSON || json.Unmarshal(open.Data, &sent) != nil ||
				sent.Model != "mock" || len(sent.Messages) != 1 || sent.Messages[0].Content != "hello" {
				t.Fatalf("StreamOpen to %s kind %d with %q, want the ChatRequest to the inference service", open.Target, open.Kind, open.Data)
			}
			if e.refuse != nil {
				if CodeOf(err) != tc.wantCode {
					t.Fatalf("open: %v (code %s), want %s", err, CodeOf(err), tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []provider.Chunk
			for {
				c, err := s.Recv()
				if errors.Is(err, io.EOF) {
					if tc.wantCode != "" {
						t.Fatalf("clean end, want %s", tc.wantCode)
					}
					break
				}
				if err != nil {
					if CodeOf(err) != tc.wantCode {
						t.Fatalf("recv: %v (code %s), want %s", err, CodeOf(err), tc.wantCode)
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
			if tc.closeSent {
				select {
				case <-e.closes:
				case <-ctx.Done():
					t.Fatal("the agent did not close the stream it gave up on")
				}
			}
			if err := s.Close(); err != nil {
				t.Errorf("close after the end: %v", err)
			}
		})
	}
}

// TestModelStreamCloseCancels: closing before the end sends the edge a StreamClose (which
// cancels the request), and Recv then reports the stream as cancelled.
func TestModelStreamCloseCancels(t *testing.T) {
	agentEnd, edgeEnd := framePipe()
	e := &streamEdge{end: edgeEnd, opened: make(chan mxp.StreamOpenPayload, 1), closes: make(chan mxp.StreamClosePayload, 1),
		chunks: []string{`{"text":"one"}`}, hold: true}
	go e.serve(t)
	l := newLink(agentEnd, mxp.NewAgentID(), quietLogger())
	t.Cleanup(func() { _ = l.Close(); edgeEnd.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := NewChatRequest("mock", Message{Role: RoleUser, Content: "hello"})
	s, err := openModelStream(ctx, l, &req)
	if err != nil {
		t.Fatal(err)
	}
	open := <-e.opened
	if c, err := s.Recv(); err != nil || c.Text != "one" {
		t.Fatalf("first chunk %+v, %v", c, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-e.closes:
		if p.StreamID != open.StreamID || p.Error != nil {
			t.Fatalf("StreamClose %+v, want a clean close of %s", p, open.StreamID)
		}
	case <-ctx.Done():
		t.Fatal("no StreamClose reached the edge")
	}
	if _, err := s.Recv(); CodeOf(err) != CodeCanceled {
		t.Fatalf("recv after close: %v, want canceled", err)
	}
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
			if CodeOf(err) != CodeInvalidPayload {
				t.Fatalf("error %v has code %s", err, CodeOf(err))
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("%q decoded to %+v", b, c)
		}
	})
}
