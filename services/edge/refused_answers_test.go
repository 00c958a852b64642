package edge

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRefusedAnswersFailCaller: an agent's answer to a delivered Call that the edge
// refuses — compressed, over limits.max_message_bytes (refused from its length prefix),
// or sent as a datagram — fails the caller at once with the refusal's code
// (invalid_payload, too_large, invalid_frame) instead of leaving it waiting for its
// deadline, counts refused_answers_total{code}, and ends the outstanding wait on the
// agent's connection (its Await count returns to 0).
func TestRefusedAnswersFailCaller(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdgeCfg(t, bs, Config{Addr: "127.0.0.1:0", CompatAddr: "127.0.0.1:0", KeyFile: filepath.Join(t.TempDir(), "edge.key"),
		Limits: PeerLimits{MaxMessageBytes: 4096}})
	pub, err := transport.ParsePublicKey(e.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := transport.GeneratePrivateKey()
	agent, err := mxp.Dial(ctxT(t), e.Addrs()["secure"], mxp.Options{PrivateKey: key, ServerKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	targetID := registerAgent(t, agent, "target")

	answers := []struct {
		name string
		code mxp.ErrorCode
		send func(call mxp.Frame) error
	}{
		{"compressed", mxp.CodeInvalidPayload, func(call mxp.Frame) error {
			return agent.Send(context.Background(), &mxp.Frame{Type: mxp.TypeResponse, Flags: mxp.FlagCompressed,
				MessageID: call.MessageID, Payload: []byte("zz")})
		}},
		{"too large", mxp.CodeTooLarge, func(call mxp.Frame) error {
			return agent.Send(context.Background(), &mxp.Frame{Type: mxp.TypeResponse, MessageID: call.MessageID,
				Payload: make([]byte, 8192)})
		}},
		{"datagram", mxp.CodeInvalidFrame, func(call mxp.Frame) error {
			return agent.SendDatagram(&mxp.Frame{Type: mxp.TypeResponse, MessageID: call.MessageID, Payload: []byte("ok")})
		}},
	}
	next := make(chan int)
	go func() {
		for f := range agent.Inbound() {
			if f.Type != mxp.TypeCall {
				continue // the edge's Errors about the refused answers
			}
			i := <-next
			if err := answers[i].send(f); err != nil {
				t.Errorf("%s: %v", answers[i].name, err)
			}
		}
	}()

	caller := dial(t, e.addr)
	for i, a := range answers {
		res := make(chan error, 1)
		go func() {
			// A deadline far beyond the test's: on the old code the caller waited for it.
			_, err := caller.CallAgent(ctxT(t), targetID, []byte("hello"), time.Hour)
			res <- err
		}()
		next <- i
		err := <-res
		var re *mxp.RemoteError
		if !asRemote(err, &re) || re.Code != a.code {
			t.Fatalf("%s answer: caller got %v, want %s", a.name, err, a.code)
		}
		if n := testutil.ToFloat64(e.m.refusedAnswers.WithLabelValues(string(a.code))); n != 1 {
			t.Fatalf("refused_answers_total{code=%s} = %v, want 1", a.code, n)
		}
		waitFor(t, "the agent's outstanding wait ended", func() bool { return agentAwaiting(e.Edge) == 0 })
	}
}

// agentAwaiting sums the outstanding Awaits of the edge's secure connections.
func agentAwaiting(e *Edge) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := 0
	for p := range e.sessions {
		if sp, ok := p.(*securePeer); ok {
			n += sp.c.Stats().Awaiting
		}
	}
	return n
}
