package edge

import (
	"fmt"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

var sprintf = fmt.Sprintf

func eventFrame(t *testing.T, topic string, data []byte, flags mxp.Flags) *mxp.Frame {
	t.Helper()
	p := mxp.EventPayload{Topic: topic, Data: data}
	payload, err := p.AppendPayload(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &mxp.Frame{Type: mxp.TypeEvent, Flags: flags, Payload: payload}
}

func nextEvent(t *testing.T, c *mxp.Conn) mxp.EventPayload {
	t.Helper()
	for {
		select {
		case f := <-c.Inbound():
			if f.Type != mxp.TypeEvent {
				continue
			}
			ev, err := mxp.DecodeEvent(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
	}
}

func TestEventsAcrossEdges(t *testing.T) {
	m := newTwoEdges(t, nil)
	sub := func(topic, pattern string) {
		t.Helper()
		r, err := m.b.Request(ctxT(t), eventFrame(t, topic, []byte(pattern), mxp.FlagRequiresAck))
		if err != nil || r.Type != mxp.TypeAck {
			t.Fatalf("%s %s: %s %v", topic, pattern, r.Type, err)
		}
	}
	sub(TopicSubscribe, "build.*")
	if r, err := m.a.Request(ctxT(t), eventFrame(t, "build.done", []byte(`{"ok":true}`), mxp.FlagRequiresAck)); err != nil || r.Type != mxp.TypeAck {
		t.Fatalf("publish: %v %v", r.Type, err)
	}
	if ev := nextEvent(t, m.b); ev.Topic != "build.done" || string(ev.Data) != `{"ok":true}` {
		t.Fatalf("event = %+v", ev)
	}
	sub(TopicUnsubscribe, "build.*")
	sub(TopicSubscribe, "deploy.>")
	_ = m.a.Send(ctxT(t), eventFrame(t, "build.again", nil, 0))
	_ = m.a.Send(ctxT(t), eventFrame(t, "deploy.eu.west", []byte("x"), 0))
	if ev := nextEvent(t, m.b); ev.Topic != "deploy.eu.west" {
		t.Fatalf("after unsubscribing build.*, got %+v", ev)
	}
	// Bad patterns and unknown subscriptions.
	for _, tc := range []struct {
		topic, pattern string
		code           mxp.ErrorCode
	}{
		{TopicSubscribe, "a..b", mxp.CodeInvalidPayload},
		{TopicSubscribe, "a.>.b", mxp.CodeInvalidPayload},
		{TopicSubscribe, "_mxp.x", mxp.CodeInvalidPayload},
		{TopicUnsubscribe, "never.subscribed", mxp.CodeNotFound},
	} {
		_, err := m.b.Request(ctxT(t), eventFrame(t, tc.topic, []byte(tc.pattern), 0))
		var re *mxp.RemoteError
		if !asRemote(err, &re) || re.Code != tc.code {
			t.Errorf("%s %q: err = %v, want %s", tc.topic, tc.pattern, err, tc.code)
		}
	}
}
