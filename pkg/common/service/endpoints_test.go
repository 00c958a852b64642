package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func startBus(t *testing.T) *bus.Bus {
	t.Helper()
	b, err := bus.Start(bus.Config{Embedded: bus.EmbeddedConfig{DontListen: true}}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func request(t *testing.T, nc *nats.Conn, subj string, data []byte, h nats.Header) (*nats.Msg, error) {
	t.Helper()
	m := nats.NewMsg(subj)
	m.Data = data
	if h != nil {
		m.Header = h
	}
	reply, err := nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return reply, bus.ReplyError(reply)
}

func TestEndpointsDiscipline(t *testing.T) {
	b := startBus(t)
	svcConn, _ := b.NewConn("svc")
	deps := Deps{Conn: svcConn, Logger: slog.New(slog.DiscardHandler)}
	ep, err := NewEndpoints(deps, micro.Config{Name: "echo", Version: "1.0.0", QueueGroup: "echo"},
		security.Limits{MaxPayloadBytes: 16, RatePerSecond: 1, RateBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Stop(context.Background())
	var sawDeadline atomic.Bool
	ep.Handle("echo", "t.echo", func(ctx context.Context, r Request) (any, error) {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*time.Second {
			sawDeadline.Store(true)
		}
		if string(r.Data) == "fail" {
			return nil, bus.Errorf(mxp.CodeInvalidArgument, "thing %q is bad", r.Data)
		}
		if string(r.Data) == "crash" {
			return nil, errors.New("secret internals")
		}
		return map[string]string{"echo": string(r.Data), "agent": r.AgentID}, nil
	})
	tests := []struct {
		name     string
		data     string
		agent    string
		deadline time.Duration
		code     mxp.ErrorCode
		contains string
	}{
		{"ok", "hi", "a1", 0, "", `"echo":"hi"`},
		{"typed error", "fail", "a2", 0, mxp.CodeInvalidArgument, ""},
		{"internal error hidden", "crash", "a3", 0, mxp.CodeInternal, ""},
		{"too large", strings.Repeat("x", 17), "a4", 0, mxp.CodeTooLarge, ""},
		{"deadline passed", "hi", "a5", -time.Second, mxp.CodeTimeout, ""},
		{"deadline carried", "hi", "a6", time.Second, "", `"agent":"a6"`},
		{"rate: burst 1", "hi", "r", 0, "", "echo"},
		{"rate: burst 2", "hi", "r", 0, "", "echo"},
		{"rate: limited", "hi", "r", 0, mxp.CodeRateLimited, ""},
	}
	for _, tc := range tests {
		h := nats.Header{}
		bus.SetAgentID(h, tc.agent)
		if tc.deadline != 0 {
			bus.SetDeadline(h, time.Now().Add(tc.deadline))
		}
		reply, err := request(t, b.Conn, "t.echo", []byte(tc.data), h)
		var be *bus.Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.code != "" && (!errors.As(err, &be) || be.Code != tc.code):
			t.Errorf("%s: err = %v, want code %s", tc.name, err, tc.code)
		case tc.contains != "" && !strings.Contains(string(reply.Data), tc.contains):
			t.Errorf("%s: reply %s", tc.name, reply.Data)
		case strings.Contains(string(reply.Data), "secret internals"):
			t.Errorf("%s: internal error leaked", tc.name)
		}
	}
	if !sawDeadline.Load() {
		t.Error("Mxp-Deadline not applied to the handler context")
	}
	if got := testutil.ToFloat64(ep.requests.WithLabelValues("echo", string(mxp.CodeTooLarge))); got != 1 {
		t.Errorf("too_large counter = %v", got)
	}
	// $SRV.PING answers through micro.
	if _, err := b.Conn.Request("$SRV.PING.echo", nil, 5*time.Second); err != nil {
		t.Fatalf("$SRV.PING: %v", err)
	}
}

// TestStopDrainsInFlight: a request being handled when Stop is called still gets its
// reply, Stop waits for it, and later requests are not served.
func TestStopDrainsInFlight(t *testing.T) {
	b := startBus(t)
	svcConn, _ := b.NewConn("svc")
	ep, err := NewEndpoints(Deps{Conn: svcConn, Logger: slog.New(slog.DiscardHandler)}, micro.Config{Name: "slow", Version: "1.0.0"}, security.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	ep.Handle("slow", "t.slow", func(ctx context.Context, r Request) (any, error) {
		close(started)
		<-release
		return "done", nil
	})
	replyCh := make(chan *nats.Msg, 1)
	go func() {
		m, err := b.Conn.Request("t.slow", nil, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		replyCh <- m
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("request never reached the handler")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- ep.Stop(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned with a request in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if m := <-replyCh; m == nil || string(m.Data) != `"done"` {
		t.Fatalf("in-flight reply lost: %v", m)
	}
	if _, err := b.Conn.Request("t.slow", nil, 200*time.Millisecond); !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("request after Stop: %v", err)
	}
}
