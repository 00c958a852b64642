package llm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/api/inference"
)

type chunkSink struct {
	chunks []string
	failAt int // fail the Send with this index (1-based); 0 never
}

func (s *chunkSink) Send(_ context.Context, b []byte) error {
	if s.failAt > 0 && len(s.chunks)+1 == s.failAt {
		return errors.New("caller went away")
	}
	s.chunks = append(s.chunks, string(b))
	return nil
}

func TestRelayText(t *testing.T) {
	req := NewChatRequest("scripted", Message{Role: RoleUser, Content: "stream these four words"})
	src, err := AdapterModel{Adapter: scriptAdapter{}}.ChatStream(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	sink := &chunkSink{}
	resp, err := RelayText(context.Background(), sink, src)
	if err != nil {
		t.Fatal(err)
	}
	want := "Reply to: stream these four words"
	if resp.Text != want || strings.Join(sink.chunks, "") != want || len(sink.chunks) < 4 {
		t.Fatalf("relayed %q in %d chunks, response %q", sink.chunks, len(sink.chunks), resp.Text)
	}
	if resp.FinishReason != inference.FinishStop {
		t.Fatalf("finish = %q", resp.FinishReason)
	}
	// A failing destination stops the relay with its error.
	src, _ = AdapterModel{Adapter: scriptAdapter{}}.ChatStream(context.Background(), &req)
	if _, err := RelayText(context.Background(), &chunkSink{failAt: 2}, src); err == nil || !strings.Contains(err.Error(), "caller went away") {
		t.Fatalf("relay to a failing sink: %v", err)
	}
}
