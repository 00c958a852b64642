package agent

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// stackRecorder is a FrameConn that records the stack of each goroutine that receives a
// Call from it.
type stackRecorder struct {
	*pipeEnd
	mu     sync.Mutex
	stacks []string
}

func (s *stackRecorder) Receive(ctx context.Context) (mxp.Frame, error) {
	f, err := s.pipeEnd.Receive(ctx)
	if err == nil && f.Type == mxp.TypeCall {
		buf := make([]byte, 16<<10)
		s.mu.Lock()
		s.stacks = append(s.stacks, string(buf[:runtime.Stack(buf, false)]))
		s.mu.Unlock()
	}
	return f, err
}

// Between the connection and a handler there is at most one goroutine hand-off: the
// agent's receive goroutine reads the connection itself (no read loop of the link's or
// the Conn's in between) and hands the Call to a worker; with InlineHandlers the handler
// runs on that same goroutine. Before, a Call crossed three goroutines (the Conn's read
// loop, the link's read loop, the agent's receive loop) before its worker.
func TestOneHandOffToTheHandler(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(map[bool]string{false: "worker", true: "inline"}[inline], func(t *testing.T) {
			handlerStack := make(chan string, 1)
			a, err := New(Config{Name: "handoff", HeartbeatInterval: time.Hour, InlineHandlers: inline, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			a.HandleCall(func(ctx context.Context, p []byte) ([]byte, error) {
				buf := make([]byte, 16<<10)
				handlerStack <- string(buf[:runtime.Stack(buf, false)])
				return p, nil
			})
			agentEnd, edgeEnd := framePipe()
			rec := &stackRecorder{pipeEnd: agentEnd}
			edge := newFakeEdge(t, edgeEnd)
			done := make(chan error, 1)
			go func() { done <- a.RunConn(context.Background(), rec) }()
			waitState(t, a, StateActive)
			edge.callAgent(1, mxp.AgentID{0xca}, "x")
			if r := edge.nextReply(t); r.Type != mxp.TypeResponse || string(r.Payload) != "x" {
				t.Fatalf("reply %+v", r)
			}
			rec.mu.Lock()
			read := rec.stacks[0]
			rec.mu.Unlock()
			if !strings.Contains(read, "agent.(*Agent).receive") {
				t.Fatalf("the Call was read by a goroutine other than the agent's receive loop:\n%s", read)
			}
			hs := <-handlerStack
			onReceive := strings.Contains(hs, "agent.(*Agent).receive")
			onWorker := strings.Contains(hs, "agent.(*Dispatcher).worker")
			if inline && !onReceive || !inline && !onWorker {
				t.Fatalf("inline %v: the handler ran on:\n%s", inline, hs)
			}
			a.Retire()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
