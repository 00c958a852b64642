package edge

import (
	"context"
	"fmt"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

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
	c, err := mxp.Dial(ctxT(t), addr, mxp.Options{PrivateKey: allowed, ServerKey: edgeKey})
	if err != nil {
		t.Fatalf("an allowed key: %v", err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), transport.DefaultHandshakeTimeout/10)
	defer cancel()
	if c, err := mxp.Dial(ctx, addr, mxp.Options{PrivateKey: stranger, ServerKey: edgeKey}); err == nil {
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
