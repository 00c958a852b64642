package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/services/edge"
)

// run is the program without the process: its exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	return edge.Module.Run(ctx, args, nil, stderr)
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"help", []string{"--help"}, 0, "MXP_EDGE_LIMITS_RATE_PER_SECOND"},
		{"unknown flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"compat not loopback", []string{"--compat-addr", "0.0.0.0:9001", "--addr", "off"}, 2, "loopback"},
		{"runs until cancelled", []string{"--addr", "127.0.0.1:0", "--compat-addr", "127.0.0.1:0"}, 0, "mxp-edge starting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			args := append(tc.args, "--http", "", "--key-file", filepath.Join(t.TempDir(), "k"))
			if code := run(ctx, args, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.out) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
		})
	}
}
