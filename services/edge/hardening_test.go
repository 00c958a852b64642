package edge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
	"github.com/mxp-mesh/mesh/services/edge/client"
)

func droppedMetric(e *Edge, reason string) float64 {
	return testutil.ToFloat64(e.m.dropped.WithLabelValues(reason))
}

// TestDatagramFrameAnsweredAndCounted: a frame sent as an unreliable datagram on the
// secure transport is answered on the reliable stream (Error invalid_frame with its
// message id) and counted; before, it waited unread in the connection and vanished.
func TestDatagramFrameAnsweredAndCounted(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e, edgeKey := startSecureEdge(t, bs)
	key, err := transport.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := transport.Dial(ctxT(t), e.addr, edgeKey, transport.Config{PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, tc := range []struct {
		msg  []byte
		id   uint64
		code mxp.ErrorCode
	}{
		{frame(t, mxp.TypeEvent, 41, []byte(`{"topic":"x","data":null}`)), 41, mxp.CodeInvalidFrame},
		{frame(t, mxp.TypeCall, 42, nil), 42, mxp.CodeInvalidFrame},
		{[]byte("nope"), 0, mxp.CodeInvalidFrame},
	} {
		if err := c.SendDatagram(tc.msg); err != nil {
			t.Fatal(err)
		}
		got, err := c.Receive(ctxT(t))
		if err != nil {
			t.Fatalf("no answer to a datagram frame: %v", err)
		}
		f, _, err := mxp.Decode(got)
		if err != nil || f.Type != mxp.TypeError || f.MessageID != tc.id {
			t.Fatalf("answer %s for message %d (%v), want Error for %d", f.Type, f.MessageID, err, tc.id)
		}
		ep, err := mxp.DecodeErrorPayload(f.Payload)
		if err != nil || ep.Code != tc.code {
			t.Fatalf("Error %+v %v, want %s", ep, err, tc.code)
		}
	}
	if n := droppedMetric(e.Edge, dropDatagram); n != 3 {
		t.Fatalf("dropped_frames_total{reason=datagram} = %v, want 3", n)
	}
	if n := framesMetric(e.Edge, "Event", dirIn, string(mxp.CodeInvalidFrame)); n != 1 {
		t.Fatalf("frames_total{Event,in,invalid_frame} = %v", n)
	}
}

// TestCompressedRefused: a frame with the COMPRESSED flag is refused with
// invalid_payload (docs/protocol.md) and counted, whatever its type; it is not routed as
// if plain. A compressed Response to a delivered Call fails that Call at once.
func TestCompressedRefused(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdge(t, bs, nil)
	target := dial(t, e.addr)
	targetID := registerAgent(t, target, "target")
	var got atomic.Int64
	go func() {
		for f := range target.Inbound() {
			if f.Type != mxp.TypeCall {
				continue
			}
			got.Add(1)
			// Answer compressed: the edge must refuse it and fail the caller's Call.
			_ = target.Send(context.Background(), &mxp.Frame{Type: mxp.TypeResponse, Flags: mxp.FlagCompressed,
				MessageID: f.MessageID, Payload: []byte("zz")})
		}
	}()

	conn, err := client.DialUDP(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	raw := client.New(conn, 0)
	t.Cleanup(func() { raw.Close() })
	call := mxp.CallPayload{Target: targetID, Data: []byte("hello")}
	body, err := call.AppendPayload(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range []mxp.MessageType{mxp.TypeCall, mxp.TypeEvent, mxp.TypeAgentDiscover} {
		payload := body
		if typ != mxp.TypeCall {
			payload = []byte(`{}`)
		}
		b, err := mxp.AppendFrame(nil, &mxp.Frame{Type: typ, Flags: mxp.FlagCompressed, MessageID: uint64(100 + i), Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		rawSendExpectError(t, raw, conn, b, uint64(100+i), mxp.CodeInvalidPayload)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("a compressed Call was routed to its target (%d deliveries)", n)
	}
	if n := framesMetric(e.Edge, "Call", dirIn, string(mxp.CodeInvalidPayload)); n != 1 {
		t.Fatalf("frames_total{Call,in,invalid_payload} = %v", n)
	}

	caller := dial(t, e.addr)
	_, err = caller.Call(ctxT(t), targetID, []byte("plain"), 0)
	var re *mxp.RemoteError
	if !asRemote(err, &re) || re.Code != mxp.CodeInvalidPayload {
		t.Fatalf("call answered compressed: err = %v, want invalid_payload", err)
	}
	if n := droppedMetric(e.Edge, dropCompressed); n != 4 {
		t.Fatalf("dropped_frames_total{reason=compressed} = %v, want 4", n)
	}
}

// TestRegistrationsCappedPerSourceAddress: 100 plaintext sockets from one address, each
// registering its 64 agents (the per-connection cap), get max_agents_per_address (256)
// registrations in all; the rest are refused rate_limited and counted. The charge is
// given back when the connections end.
func TestRegistrationsCappedPerSourceAddress(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdge(t, bs, nil)
	const sockets, perSocket = 100, 64
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	clients := make([]*client.Client, sockets)
	for i := range clients {
		clients[i] = dial(t, e.addr)
	}
	for _, c := range clients {
		wg.Go(func() {
			for j := range perSocket {
				_, err := c.Register(ctxT(t), mxp.RegisterRequest{ID: mxp.NewAgentID(), Name: "echo",
					Capabilities: []string{"echo"}, Metadata: mxp.AgentMetadata{Version: "1"}})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, mxp.CodeRateLimited):
					limited.Add(1)
				default:
					t.Errorf("register %d: %v", j, err)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != 256 || limited.Load() != sockets*perSocket-256 {
		t.Fatalf("%d registered, %d refused; want 256 and %d", ok.Load(), limited.Load(), sockets*perSocket-256)
	}
	if n := droppedMetric(e.Edge, dropAgentsPerAddress); n != sockets*perSocket-256 {
		t.Fatalf("dropped_frames_total{reason=agents_per_address} = %v", n)
	}
	for _, c := range clients {
		c.Close()
	}
	e.stop() // ends every session: each gives its charge back
	e.mu.RLock()
	left := len(e.perSource)
	e.mu.RUnlock()
	if left != 0 {
		t.Fatalf("%d sources still charged after every connection ended", left)
	}
}

// TestAllowKeys: with allow_keys_file set, only the listed client keys connect; the
// others are refused in the handshake and counted.
func TestAllowKeys(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	allowed, _ := transport.GeneratePrivateKey()
	stranger, _ := transport.GeneratePrivateKey()
	dir := t.TempDir()
	list := filepath.Join(dir, "allowed_keys")
	text := fmt.Sprintf("# agents of team A\n%s  # the echo agent\n\n", allowed.PublicKey())
	if err := os.WriteFile(list, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	te := startEdgeCfg(t, bs, Config{Addr: "127.0.0.1:0", KeyFile: filepath.Join(dir, "edge.key"), AllowKeysFile: list})
	edgeKey, _ := transport.ParsePublicKey(te.PublicKey())
	addr := te.Addrs()["secure"]
	c, err := client.DialSecure(ctxT(t), addr, edgeKey, allowed)
	if err != nil {
		t.Fatalf("an allowed key: %v", err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), transport.DefaultHandshakeTimeout/10)
	defer cancel()
	if c, err := client.DialSecure(ctx, addr, edgeKey, stranger); err == nil {
		c.Close()
		t.Fatal("a key not in the list connected")
	}
	waitFor(t, "the refusal counted", func() bool {
		return testutil.ToFloat64(te.m.handshakeFailures.WithLabelValues("secure", "peer_refused")) > 0
	})
}

// TestAllowKeysConfig: bad lists fail validation, naming the key; an empty file is
// refused rather than read as "any key".
func TestAllowKeysConfig(t *testing.T) {
	k, _ := transport.GeneratePrivateKey()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("# nobody yet\n"), 0o600)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{AllowKeys: []string{k.PublicKey().String(), "nope"}}, "allow_keys[1]"},
		{Config{AllowKeysFile: filepath.Join(dir, "missing")}, "allow_keys_file"},
		{Config{AllowKeysFile: empty}, "no key"},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	allow, err := Config{AllowKeys: []string{k.PublicKey().String()}}.allowPeer()
	if err != nil || !allow(k.PublicKey()) {
		t.Fatalf("listed key refused: %v", err)
	}
	other, _ := transport.GeneratePrivateKey()
	if allow(other.PublicKey()) {
		t.Fatal("unlisted key allowed")
	}
}
