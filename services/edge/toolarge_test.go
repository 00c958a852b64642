package edge

import (
	"path/filepath"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// TestSecureFrameOverLimitRefusedFromPrefix: on the secure transport a frame over
// limits.max_message_bytes is refused from its length prefix (the transport counts it,
// holds none of its body) and answered too_large with its message id; the connection goes
// on, and a reload of the limit applies to the transport at once.
func TestSecureFrameOverLimitRefusedFromPrefix(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e := startEdgeCfg(t, bs, Config{Addr: "127.0.0.1:0", KeyFile: filepath.Join(t.TempDir(), "edge.key"),
		Limits: PeerLimits{MaxMessageBytes: 4096}})
	pub, err := transport.ParsePublicKey(e.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := transport.GeneratePrivateKey()
	c, err := mxp.Dial(ctxT(t), e.Addrs()["secure"], mxp.Options{PrivateKey: key, ServerKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var st *SecureTransport
	for _, tr := range e.transports() {
		if s, ok := tr.(*SecureTransport); ok {
			st = s
		}
	}

	big := frame(t, mxp.TypeCall, 88, make([]byte, 256<<10))
	before := framesMetric(e.Edge, "Call", "in", "too_large")
	rawSendExpectError(t, c, big, 88, mxp.CodeTooLarge)
	if after := framesMetric(e.Edge, "Call", "in", "too_large"); after != before+1 {
		t.Fatalf("frames_total{Call,in,too_large} went %v → %v", before, after)
	}
	if got := st.Stats().MessagesTooLarge; got != 1 {
		t.Fatalf("transport MessagesTooLarge = %d, want 1 (refused before reassembly)", got)
	}
	// The connection goes on: a frame under the limit is handled as usual.
	rawSendExpectError(t, c, frame(t, mxp.TypeCall, 89, []byte{1, 2, 3}), 89, mxp.CodeInvalidPayload)

	// A reload raising the limit reaches the transport: 5000 bytes now pass it.
	cfg := e.Config()
	cfg.Limits.MaxMessageBytes = 8192
	if err := e.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	rawSendExpectError(t, c, frame(t, mxp.TypeCall, 90, make([]byte, 5000)), 90, mxp.CodeInvalidPayload)
	if got := st.Stats().MessagesTooLarge; got != 1 {
		t.Fatalf("after the reload, transport MessagesTooLarge = %d, want still 1", got)
	}
}
