package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func TestKeygenEchoServerPing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keyFile := filepath.Join(t.TempDir(), "server.key")
	var out, errb bytes.Buffer
	if code := execute(ctx, []string{"keygen", "--out", keyFile}, nil, &out, &errb); code != 0 {
		t.Fatalf("keygen: %d %s", code, errb.String())
	}
	k, err := mxp.LoadPrivateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != k.PublicKey().String() {
		t.Fatalf("keygen printed %q", out.String())
	}
	// As echo-server listens.
	l, err := mxp.Listen(ctx, "127.0.0.1:0", mxp.Options{PrivateKey: k, Serve: mxp.Echo})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	tests := []struct {
		name string
		args []string
		code int
		sent int
	}{
		{"echo", []string{"--count", "50", "--size", "300", "--concurrency", "4"}, 0, 50},
		{"wrong key", []string{"--count", "1", "--server-pubkey", mustOtherKey(t)}, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"ping", "--json", "--addr", l.Addr().String(), "--server-pubkey", k.PublicKey().String()}, tt.args...)
			out.Reset()
			errb.Reset()
			pctx, pc := context.WithTimeout(ctx, 3*time.Second)
			defer pc()
			code := execute(pctx, args, nil, &out, &errb)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s %s", code, tt.code, out.String(), errb.String())
			}
			if tt.sent == 0 {
				return
			}
			var s pingSummary
			if err := json.Unmarshal(out.Bytes(), &s); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			if s.Sent != tt.sent || s.Received != tt.sent || s.Lost != 0 || s.Corrupted != 0 || s.RTT.P50 <= 0 || s.RTT.Max < s.RTT.P99 {
				t.Fatalf("summary %+v", s)
			}
		})
	}
}

func mustOtherKey(t *testing.T) string {
	k, err := mxp.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().String()
}
