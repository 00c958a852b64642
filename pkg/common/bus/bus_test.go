package bus

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// SetIDsAndDeadline writes what SetMsgID, SetTraceID and SetDeadline write, header for
// header, and leaves out what they would not be called for; appending to one of its
// values does not write into another's.
func TestSetIDsAndDeadline(t *testing.T) {
	dl := time.UnixMilli(1_700_000_000_123)
	for _, tc := range []struct {
		name           string
		msgID, traceID uint64
		deadline       time.Time
	}{
		{"all", 0x0102030405060708, 42, dl},
		{"no trace", 7, 0, dl},
		{"no deadline", 7, 0xffffffffffffffff, time.Time{}},
		{"id only", 0, 0, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := nats.Header{}
			SetMsgID(want, tc.msgID)
			if tc.traceID != 0 {
				SetTraceID(want, tc.traceID)
			}
			if !tc.deadline.IsZero() {
				SetDeadline(want, tc.deadline)
			}
			got := nats.Header{}
			SetIDsAndDeadline(got, tc.msgID, tc.traceID, tc.deadline)
			if len(got) != len(want) {
				t.Fatalf("headers %v, want %v", got, want)
			}
			for k, v := range want {
				if len(got[k]) != 1 || got[k][0] != v[0] {
					t.Fatalf("%s = %q, want %q", k, got[k], v)
				}
			}
			got.Add(HeaderMsgID, "second") // must not overwrite the next value
			if tc.traceID != 0 && got.Get(HeaderTraceID) != want.Get(HeaderTraceID) {
				t.Fatalf("adding to %s changed %s to %q", HeaderMsgID, HeaderTraceID, got.Get(HeaderTraceID))
			}
		})
	}
}

func BenchmarkSetIDsAndDeadline(b *testing.B) {
	dl := time.Now().Add(time.Minute)
	b.Run("one-call", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			h := make(nats.Header, 4)
			SetIDsAndDeadline(h, uint64(i), uint64(i)*7, dl)
		}
	})
	b.Run("three-setters", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			h := make(nats.Header, 4)
			SetMsgID(h, uint64(i))
			SetTraceID(h, uint64(i)*7)
			SetDeadline(h, dl)
		}
	})
}

func TestHeaders(t *testing.T) {
	h := nats.Header{}
	SetMsgID(h, 0x0102030405060708)
	SetTraceID(h, 42)
	SetAgentID(h, "a1")
	dl := time.UnixMilli(1_700_000_000_123)
	SetDeadline(h, dl)
	if got := h.Get(HeaderMsgID); got != "0102030405060708" {
		t.Fatalf("msg id header = %q", got)
	}
	if id, ok, err := MsgID(h); !ok || err != nil || id != 0x0102030405060708 {
		t.Fatalf("MsgID = %x %v %v", id, ok, err)
	}
	if id, ok, err := TraceID(h); !ok || err != nil || id != 42 {
		t.Fatalf("TraceID = %d %v %v", id, ok, err)
	}
	if AgentID(h) != "a1" {
		t.Fatal("agent id")
	}
	if got, ok, err := Deadline(h); !ok || err != nil || !got.Equal(dl) {
		t.Fatalf("Deadline = %v %v %v", got, ok, err)
	}
	bad := []struct {
		key, val string
	}{
		{HeaderMsgID, "xyz"},
		{HeaderMsgID, "010203040506070g"},
		{HeaderTraceID, "01020304050607080"},
		{HeaderDeadline, "soon"},
		{HeaderDeadline, "-5"},
	}
	for _, tc := range bad {
		h := nats.Header{tc.key: {tc.val}}
		var err error
		switch tc.key {
		case HeaderMsgID:
			_, _, err = MsgID(h)
		case HeaderTraceID:
			_, _, err = TraceID(h)
		case HeaderDeadline:
			_, _, err = Deadline(h)
		}
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s=%q: err = %v, want error naming the header", tc.key, tc.val, err)
		}
	}
	if _, ok, err := MsgID(nats.Header{}); ok || err != nil {
		t.Fatal("absent header must be ok=false, err=nil")
	}
}

func FuzzParseHeaders(f *testing.F) {
	f.Add("0102030405060708", "1700000000000")
	f.Add("", "x")
	f.Fuzz(func(t *testing.T, id, dl string) {
		h := nats.Header{HeaderMsgID: {id}, HeaderDeadline: {dl}}
		if v, ok, err := MsgID(h); err == nil && ok {
			h2 := nats.Header{}
			SetMsgID(h2, v)
			if back, _, _ := MsgID(h2); back != v {
				t.Fatalf("round trip %x != %x", back, v)
			}
		}
		_, _, _ = Deadline(h)
	})
}

func TestReconnectDelay(t *testing.T) {
	for attempt := 1; attempt < 20; attempt++ {
		for range 50 {
			d := ReconnectDelay(attempt, 100*time.Millisecond, time.Second)
			if d < 0 || d > time.Second {
				t.Fatalf("attempt %d: delay %v out of [0,1s]", attempt, d)
			}
			if attempt == 1 && d > 100*time.Millisecond {
				t.Fatalf("first attempt delay %v > base", d)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("nats://user:pass@h1:4222,nats://h2:4222")
	if strings.Contains(got, "pass") || !strings.Contains(got, "h2:4222") {
		t.Fatalf("redactURL = %q", got)
	}
}

func TestEmbeddedModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  EmbeddedConfig
	}{
		{"random-port", EmbeddedConfig{}},
		{"in-process", EmbeddedConfig{DontListen: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Connect(Config{Embedded: tc.cfg}, "test", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if tc.cfg.DontListen != (b.Server.ClientURL() == "") {
				t.Fatalf("ClientURL %q with DontListen=%v", b.Server.ClientURL(), tc.cfg.DontListen)
			}
			nc2, err := b.NewConn("second")
			if err != nil {
				t.Fatal(err)
			}
			defer nc2.Close()
			sub, err := nc2.SubscribeSync("x.y")
			if err != nil {
				t.Fatal(err)
			}
			nc2.Flush()
			if err := b.Conn.Publish("x.y", []byte("hi")); err != nil {
				t.Fatal(err)
			}
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil || string(m.Data) != "hi" {
				t.Fatalf("got %v %v", m, err)
			}
		})
	}
}

func TestConnectExternalURL(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	b, err := Connect(Config{URL: srv.ClientURL()}, "ext", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Server != nil {
		t.Fatal("external URL must not start a server")
	}
	if !b.Conn.IsConnected() {
		t.Fatal("not connected")
	}
}

// TestErrorReplyRoundTrip checks typed errors travel in the micro convention.
func TestErrorReplyRoundTrip(t *testing.T) {
	b, err := Start(Config{Embedded: EmbeddedConfig{DontListen: true}}, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	svc, err := micro.AddService(b.Conn, micro.Config{Name: "errsvc", Version: "0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	err = svc.AddEndpoint("typed", micro.HandlerFunc(func(r micro.Request) {
		RespondError(r, Errorf(mxp.CodeInvalidAgentID, "agent id %q is not a UUID", "x"))
	}), micro.WithEndpointSubject("t.typed"))
	if err != nil {
		t.Fatal(err)
	}
	// A service built before the codes were merged sends the old spelling with its old
	// status; the reply reads as today's code.
	err = svc.AddEndpoint("legacy", micro.HandlerFunc(func(r micro.Request) {
		r.Error("413", "too big", []byte(`{"error":"too big","code":"payload_too_large"}`),
			micro.WithHeaders(micro.Headers{HeaderErrorKind: []string{"payload_too_large"}}))
	}), micro.WithEndpointSubject("t.legacy"))
	if err != nil {
		t.Fatal(err)
	}
	err = svc.AddEndpoint("untyped", micro.HandlerFunc(func(r micro.Request) {
		RespondError(r, errors.New("db password wrong"))
	}), micro.WithEndpointSubject("t.untyped"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		subj   string
		code   mxp.ErrorCode
		status int
		leak   string
	}{
		{"t.typed", mxp.CodeInvalidAgentID, 400, ""},
		{"t.untyped", mxp.CodeInternal, 500, "password"},
		{"t.legacy", mxp.CodeTooLarge, 413, ""},
	} {
		msg, err := b.Conn.Request(tc.subj, nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get(micro.ErrorCodeHeader) != strconv.Itoa(tc.status) {
			t.Fatalf("%s: Nats-Service-Error-Code = %q", tc.subj, msg.Header.Get(micro.ErrorCodeHeader))
		}
		var e *Error
		if !errors.As(ReplyError(msg), &e) || e.Code != tc.code || e.Status() != tc.status {
			t.Fatalf("%s: ReplyError = %v", tc.subj, ReplyError(msg))
		}
		if tc.leak != "" && strings.Contains(string(msg.Data)+e.Message, tc.leak) {
			t.Fatalf("%s: internal error text leaked", tc.subj)
		}
	}
	if ReplyError(&nats.Msg{Data: []byte("ok")}) != nil {
		t.Fatal("plain reply must not be an error")
	}
}

// TestDrainDeliversPending checks Drain lets in-flight handlers finish before closing.
func TestDrainDeliversPending(t *testing.T) {
	b, err := Start(Config{Embedded: EmbeddedConfig{DontListen: true}}, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Server.Shutdown()
	sc, err := b.NewConn("subscriber")
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	release := make(chan struct{})
	if _, err := sc.Subscribe("work", func(*nats.Msg) {
		<-release
		handled.Add(1)
	}); err != nil {
		t.Fatal(err)
	}
	sc.Flush()
	for range 10 {
		b.Conn.Publish("work", nil)
	}
	b.Conn.Flush()
	done := make(chan error, 1)
	go func() { done <- Drain(sc, 5*time.Second) }()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if handled.Load() != 10 {
		t.Fatalf("handled %d of 10 messages before close", handled.Load())
	}
	if !sc.IsClosed() {
		t.Fatal("connection not closed after drain")
	}
	b.Conn.Close()
}
