package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport/netem"
)

// The edge vanishes (its address stops answering: here the relay in front of it closes)
// while the agent's Call is acknowledged and unanswered: the Call fails with unreachable
// (and ErrLinkClosed) within about the transport's DeadPeerTimeout, not with timeout at
// its 20 s deadline.
func TestLinkCallFailsWhenEdgeVanishes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sk, _ := mxp.GeneratePrivateKey()
	ck, _ := mxp.GeneratePrivateKey()
	ln, err := mxp.Listen(ctx, "127.0.0.1:0", mxp.Options{PrivateKey: sk})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	relay, err := netem.New("127.0.0.1:0", ln.Addr().String(), netem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	held := make(chan struct{}, 1)
	go func() { // the edge: takes the Call, never answers
		s, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		for {
			f, err := s.Receive(ctx)
			if err != nil {
				return
			}
			if f.Type == mxp.TypeCall {
				held <- struct{}{}
			}
		}
	}()
	c, err := mxp.Dial(ctx, relay.Addr().String(), mxp.Options{PrivateKey: ck, ServerKey: ln.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	l := newLink(c, mxp.NewAgentID(), quietLogger())
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := l.request(ctx, mxp.TypeCall, 0, []byte("held"))
		errc <- err
	}()
	<-held
	vanished := time.Now()
	relay.Close()
	err = <-errc
	t.Logf("edge vanished: the agent's call failed after %v: %v", time.Since(vanished).Round(time.Millisecond), err)
	if CodeOf(err) != CodeUnreachable || !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("call when the edge vanished: %v (code %s), want unreachable", err, CodeOf(err))
	}
}
