package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func TestRunConfigErrors(t *testing.T) {
	t.Setenv(EnvEdge, "")
	t.Setenv(EnvEdgeKey, "")
	dir := t.TempDir()
	badMode := filepath.Join(dir, "open.key")
	if err := os.WriteFile(badMode, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	edgeKey, _ := mxp.GeneratePrivateKey()
	pub := edgeKey.PublicKey().String()
	if err := os.WriteFile(filepath.Join(dir, "edge.json"), []byte(`{"edge_addr":"127.0.0.1:1","public_key":"`+pub+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "edge.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no mesh", Config{DataDir: t.TempDir()}, "no mesh found"},
		{"incomplete edge.json", Config{DataDir: broken}, "does not name"},
		{"bad edge key", Config{EdgeAddr: "127.0.0.1:1", EdgeKey: "not base64!"}, "Config.EdgeKey"},
		{"key file readable by others", Config{EdgeAddr: "127.0.0.1:1", EdgeKey: pub, KeyFile: badMode}, "want 0600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name, tt.cfg.Logger = "x", quietLogger()
			a, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want %q", err, tt.want)
			}
		})
	}
	// edge.json is found and the key file is created with mode 0600; the dial then fails
	// fast on a cancelled context (nobody listens there).
	keyFile := filepath.Join(dir, "keys", "agent.key")
	a, _ := New(Config{Name: "x", DataDir: dir, KeyFile: keyFile, Logger: quietLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Run = %v", err)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	k1, _ := loadOrCreateKey(keyFile)
	k2, _ := loadOrCreateKey(keyFile)
	if k1 != k2 || k1.IsZero() {
		t.Fatal("key file not reused")
	}
}

// TestRunEdgeFromEnvironment: Run defaults the edge to $MXP_EDGE and $MXP_EDGE_KEY (the
// export lines of make compose-up), and when only one is set and there is no edge.json
// the error names the missing variable (it said "no mesh found in .mxp").
func TestRunEdgeFromEnvironment(t *testing.T) {
	k, _ := mxp.GeneratePrivateKey()
	pub := k.PublicKey().String()
	run := func(ctx context.Context, cfg Config) error {
		cfg.Name, cfg.Logger, cfg.DataDir = "x", quietLogger(), t.TempDir()
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return a.Run(ctx)
	}
	t.Setenv(EnvEdge, "127.0.0.1:1")
	t.Setenv(EnvEdgeKey, "")
	if err := run(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "set $"+EnvEdgeKey) {
		t.Fatalf("only %s: Run = %v", EnvEdge, err)
	}
	t.Setenv(EnvEdge, "")
	t.Setenv(EnvEdgeKey, pub)
	if err := run(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "set $"+EnvEdge+" ") {
		t.Fatalf("only %s: Run = %v", EnvEdgeKey, err)
	}
	// Both: Run dials the address they name (the cancelled context ends the dial at once).
	t.Setenv(EnvEdge, "127.0.0.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := run(ctx, Config{}); err == nil || !strings.Contains(err.Error(), "connecting to the edge at 127.0.0.1:1") {
		t.Fatalf("both: Run = %v", err)
	}
	// A field wins over its variable.
	if err := run(ctx, Config{EdgeAddr: "127.0.0.1:2"}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:2") {
		t.Fatalf("Config.EdgeAddr over %s: Run = %v", EnvEdge, err)
	}
}
