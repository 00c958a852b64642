package edge

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// rawSendExpectError sends msg as it is (mxp.Conn.SendRaw) and expects the edge to answer
// with an Error of wantCode for message wantID.
func rawSendExpectError(t *testing.T, c *mxp.Conn, msg []byte, wantID uint64, wantCode mxp.ErrorCode) {
	t.Helper()
	if err := c.SendRaw(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-c.Inbound():
		if f.Type != mxp.TypeError {
			t.Fatalf("got %s, want Error", f.Type)
		}
		ep, err := mxp.DecodeErrorPayload(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if ep.Code != wantCode || f.MessageID != wantID {
			t.Fatalf("Error %s (%q) for message %d, want %s for %d", ep.Code, ep.Error, f.MessageID, wantCode, wantID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Error frame")
	}
}

func frame(t *testing.T, typ mxp.MessageType, id uint64, payload []byte) []byte {
	t.Helper()
	b, err := mxp.AppendFrame(nil, &mxp.Frame{Type: typ, MessageID: id, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadInputGetsErrorAndMetric(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdge(t, bs, func(c *Config) { c.Limits.MaxMessageBytes = 4096 })
	good := dial(t, e.addr)
	goodID := registerAgent(t, good, "good", "echo")
	serveEcho(good, nil)

	bad, err := mxp.DialPlaintext(context.Background(), e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Close() })

	badChecksum := frame(t, mxp.TypeCall, 77, make([]byte, 30))
	badChecksum[len(badChecksum)-1] ^= 0xff
	badMagic := frame(t, mxp.TypeCall, 78, nil)
	badMagic[0] = 'X'
	trailing := append(frame(t, mxp.TypeEvent, 79, []byte("\x01a")), 0, 0)
	heartbeatOther, _ := (&mxp.HeartbeatRequest{AgentID: goodID}).AppendPayload(nil)
	callNoTarget := make([]byte, mxp.CallHeaderSize)
	binary.LittleEndian.PutUint32(callNoTarget[16:], 5)
	ev := mxp.EventPayload{Topic: "_mxp.internal", Data: nil}
	reserved, _ := ev.AppendPayload(nil)

	cases := []struct {
		name    string
		msg     []byte
		id      uint64
		code    mxp.ErrorCode
		typ     string
		outcome string
	}{
		{"garbage datagram", []byte("hello, edge"), 0, mxp.CodeInvalidFrame, "invalid", "invalid_frame"},
		{"short garbage", []byte{1}, 0, mxp.CodeInvalidFrame, "invalid", "invalid_frame"},
		{"checksum", badChecksum, 77, mxp.CodeInvalidFrame, "Call", "invalid_frame"},
		{"magic", badMagic, 78, mxp.CodeInvalidFrame, "Call", "invalid_frame"},
		{"trailing bytes", trailing, 79, mxp.CodeInvalidFrame, "Event", "invalid_frame"},
		{"register not JSON", frame(t, mxp.TypeAgentRegister, 80, []byte("not json")), 80, mxp.CodeInvalidPayload, "AgentRegister", "invalid_payload"},
		{"register missing id", frame(t, mxp.TypeAgentRegister, 81, []byte(`{"name":"x"}`)), 81, mxp.CodeInvalidAgentID, "AgentRegister", "invalid_agent_id"},
		{"discover bad limit", frame(t, mxp.TypeAgentDiscover, 82, []byte(`{"limit":-1}`)), 82, mxp.CodeInvalidQuery, "AgentDiscover", "invalid_query"},
		{"call too short", frame(t, mxp.TypeCall, 83, []byte{1, 2, 3}), 83, mxp.CodeInvalidPayload, "Call", "invalid_payload"},
		{"call zero target", frame(t, mxp.TypeCall, 84, callNoTarget), 84, mxp.CodeInvalidPayload, "Call", "invalid_payload"},
		{"event bad topic", frame(t, mxp.TypeEvent, 85, []byte("\x03a b")), 85, mxp.CodeInvalidPayload, "Event", "invalid_payload"},
		{"event reserved topic", frame(t, mxp.TypeEvent, 86, reserved), 86, mxp.CodeForbidden, "Event", "forbidden"},
		{"stream chunk unknown", frame(t, mxp.TypeStreamChunk, 87, make([]byte, 20)), 87, mxp.CodeInvalidPayload, "StreamChunk", "invalid_payload"},
		{"oversize", frame(t, mxp.TypeCall, 88, make([]byte, 5000)), 88, mxp.CodeTooLarge, "Call", "too_large"},
		{"not my agent", frame(t, mxp.TypeAgentHeartbeat, 89, heartbeatOther), 89, mxp.CodeForbidden, "AgentHeartbeat", "forbidden"},
		{"unsolicited response", frame(t, mxp.TypeResponse, 90, []byte("?")), 90, mxp.CodeNotFound, "Response", "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := framesMetric(e.Edge, tc.typ, "in", tc.outcome)
			rawSendExpectError(t, bad, tc.msg, tc.id, tc.code)
			if after := framesMetric(e.Edge, tc.typ, "in", tc.outcome); after != before+1 {
				t.Fatalf("metric frames_total{%s,in,%s} went %v → %v", tc.typ, tc.outcome, before, after)
			}
		})
	}
	// The good agent's traffic was untouched throughout.
	other := dial(t, e.addr)
	if got, err := other.CallAgent(ctxT(t), goodID, []byte("still fine"), 5*time.Second); err != nil || string(got) != "still fine" {
		t.Fatalf("good traffic after bad input: %q, %v", got, err)
	}
}

func TestRateLimitFlood(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdge(t, bs, func(c *Config) { c.Limits.RatePerSecond, c.Limits.RateBurst = 20, 20 })
	good := dial(t, e.addr)
	goodID := registerAgent(t, good, "good", "echo")
	serveEcho(good, nil)

	flooder := dial(t, e.addr)
	const n = 200
	req := mxp.DiscoverRequest{}
	payload, _ := req.AppendPayload(nil)
	limited := 0
	for range n {
		_, err := flooder.Request(ctxT(t), &mxp.Frame{Type: mxp.TypeAgentDiscover, Payload: payload})
		if errors.Is(err, mxp.CodeRateLimited) {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if limited == 0 || limited == n {
		t.Fatalf("%d of %d frames rate limited; want some but not all", limited, n)
	}
	if got := framesMetric(e.Edge, "AgentDiscover", "in", "rate_limited"); int(got) != limited {
		t.Fatalf("rate_limited metric %v, want %d", got, limited)
	}
	// The flood is per connection: another connection's call still goes through.
	other := dial(t, e.addr)
	if got, err := other.CallAgent(ctxT(t), goodID, []byte("unaffected"), 5*time.Second); err != nil || string(got) != "unaffected" {
		t.Fatalf("other connection during flood: %q, %v", got, err)
	}
}

func TestInFlightLimit(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdge(t, bs, func(c *Config) { c.Limits.MaxInFlight = 2 })
	b := dial(t, e.addr)
	bID := registerAgent(t, b, "slow") // never answers
	a := dial(t, e.addr)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := a.CallAgent(ctxT(t), bID, nil, time.Second)
			errs <- err
		}()
	}
	var limited, timeouts int
	for range 3 {
		switch err := <-errs; {
		case errors.Is(err, mxp.CodeRateLimited):
			limited++
		case errors.Is(err, mxp.CodeTimeout):
			timeouts++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	if limited != 1 || timeouts != 2 {
		t.Fatalf("limited %d, timeouts %d; want 1 and 2", limited, timeouts)
	}
}

// TestAnswersNotChargedToRateLimit: an agent's Responses to the Calls the edge delivered do
// not count against its connection's rate limit (they used to: a busy agent answering
// faster than rate_per_second lost its answers once the burst was spent, and each such
// call waited for its deadline); a Response to nothing delivered still does.
func TestAnswersNotChargedToRateLimit(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	const burst = 12 // a refill of 0.001 frames/s adds nothing during the test
	e := startEdge(t, bs, func(c *Config) { c.Limits.RatePerSecond, c.Limits.RateBurst = 0.001, burst })
	agent := dial(t, e.addr)
	agentID := registerAgent(t, agent, "busy", "echo") // one frame of the agent's burst
	serveEcho(agent, nil)

	// Four callers, five Calls each (within each caller's own burst): twenty answers from
	// the agent, more than its burst.
	for c := range 4 {
		caller := dial(t, e.addr)
		for i := range 5 {
			want := []byte{byte(c), byte(i)}
			if got, err := caller.CallAgent(ctxT(t), agentID, want, 5*time.Second); err != nil || string(got) != string(want) {
				t.Fatalf("caller %d call %d: %q, %v", c, i, got, err)
			}
		}
	}
	if got := framesMetric(e.Edge, "Response", "in", "rate_limited"); got != 0 {
		t.Fatalf("%v answers rate limited", got)
	}

	// Responses to nothing delivered are charged: the agent has burst-1 tokens left.
	for range 2 * burst {
		err := agent.Send(ctxT(t), &mxp.Frame{Type: mxp.TypeResponse, MessageID: 12345, Payload: []byte("stray")})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "stray responses answered", func() bool {
		return framesMetric(e.Edge, "Response", "in", "not_found")+framesMetric(e.Edge, "Response", "in", "rate_limited") == 2*burst
	})
	if got := framesMetric(e.Edge, "Response", "in", "rate_limited"); got != burst+1 {
		t.Fatalf("%v stray responses rate limited, want %d", got, burst+1)
	}
}
