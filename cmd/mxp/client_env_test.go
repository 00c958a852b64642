package main

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// silentUDP is a bound UDP socket that reads and never answers: an address where a
// handshake gets no reply (no ICMP refusal either).
func silentUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

// TestTimeoutFromFirstPacket: --timeout bounds the handshake too (it used to be a fixed
// 10 s whatever --timeout said), and a handshake nobody answers names the address and
// what to check instead of "context deadline exceeded".
func TestTimeoutFromFirstPacket(t *testing.T) {
	addr := silentUDP(t)
	key := strangerKey(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"call", "--to", "echo", "--data", "x", "--timeout", "300ms"},
		{"agents", "--timeout", "300ms"},
		{"bench", "--to", "echo", "--timeout", "300ms"},
	} {
		code, out, errOut := runCLI(context.Background(), append(args, "--edge", addr, "--edge-key", key, "--data-dir", dir)...)
		want := "nothing answers at " + addr + " (after "
		if code != 1 || out != "" || !strings.Contains(errOut, want) || !strings.Contains(errOut, "check that the mesh is running") {
			t.Errorf("mxp %s: exit %d\nstdout %q\nstderr %q\nwant %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}
}

// TestEdgeFromEnvironment: MXP_EDGE and MXP_EDGE_KEY reach a mesh whose data directory
// the client cannot see (a Compose or Kubernetes mesh), with no flags; a flag still wins.
func TestEdgeFromEnvironment(t *testing.T) {
	dir := startDev(t)
	info, err := readEdgeInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir() // no edge.json here
	t.Setenv(envEdge, info.EdgeAddr)
	t.Setenv(envEdgeKey, info.PublicKey)
	code, out, errOut := runCLI(context.Background(), "agents", "--data-dir", elsewhere)
	if code != 0 || out != "no agents\n" {
		t.Fatalf("agents with %s and %s: exit %d %q %s", envEdge, envEdgeKey, code, out, errOut)
	}
	code, out, errOut = runCLI(context.Background(), "call", "--to", "inference", "--data", `{"messages":[{"role":"user","content":"hi"}]}`, "--data-dir", elsewhere)
	if code != 0 || !strings.Contains(out, "Mock reply to: hi") {
		t.Fatalf("call with %s: exit %d %q %s", envEdge, code, out, errOut)
	}
	// No data directory: nothing is created (the client key is this run's own).
	none := filepath.Join(t.TempDir(), "none")
	code, out, errOut = runCLI(context.Background(), "agents", "--data-dir", none)
	if _, err := os.Stat(none); code != 0 || out != "no agents\n" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("agents with no data directory: exit %d %q %s; the directory: %v", code, out, errOut, err)
	}
	// Only one of the two: the error names the other.
	t.Setenv(envEdgeKey, "")
	code, _, errOut = runCLI(context.Background(), "agents", "--data-dir", none)
	if code != 1 || !strings.Contains(errOut, "$"+envEdgeKey+" (or --edge-key) is missing") {
		t.Fatalf("only %s: exit %d %s", envEdge, code, errOut)
	}
	t.Setenv(envEdgeKey, info.PublicKey)
	t.Setenv(envEdge, "")
	code, _, errOut = runCLI(context.Background(), "agents", "--data-dir", none)
	if code != 1 || !strings.Contains(errOut, "$"+envEdge+" (or --edge) is missing") {
		t.Fatalf("only %s: exit %d %s", envEdgeKey, code, errOut)
	}
	other := silentUDP(t)
	code, _, errOut = runCLI(context.Background(), "agents", "--edge", other, "--timeout", "200ms", "--data-dir", elsewhere)
	if code != 1 || !strings.Contains(errOut, "nothing answers at "+other) {
		t.Fatalf("--edge over %s: exit %d %s", envEdge, code, errOut)
	}
}

// TestStaleKeyNoTimeout: with no --timeout the transport's own handshake timeout ends the
// dial before the command's deadline; that too is "nothing answers", with the hint that
// the key (named by where it came from) may be wrong or stale. It used to print the bare
// "transport: dial ...: transport: handshake timed out".
func TestStaleKeyNoTimeout(t *testing.T) {
	old := handshakeTimeout
	handshakeTimeout = 300 * time.Millisecond
	t.Cleanup(func() { handshakeTimeout = old })
	addr := silentUDP(t)
	key := strangerKey(t)
	dir := t.TempDir()
	t.Setenv(envEdgeKey, key)
	for _, args := range [][]string{
		{"call", "--to", "echo", "--data", "x"},
		{"stream", "--to", "echo", "--data", "x"},
		{"agent", "echo"},
		{"agents"},
	} {
		code, _, errOut := runCLI(context.Background(), append(args, "--edge", addr, "--data-dir", dir)...)
		want := "nothing answers at " + addr + " (after "
		if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "key from $"+envEdgeKey) ||
			!strings.Contains(errOut, "stale") {
			t.Errorf("mxp %s: exit %d\nstderr %q\nwant %q and the key's source", strings.Join(args, " "), code, errOut, want)
		}
	}
}

// strangerKey is the public key of no edge, base64.
func strangerKey(t *testing.T) string {
	t.Helper()
	k, err := mxp.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().String()
}
