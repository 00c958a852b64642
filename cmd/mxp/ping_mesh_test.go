package main

import (
	"context"
	"strings"
	"testing"
)

// TestPingAgainstMeshHints: ping pointed at a mesh's edge (which routes Calls by target,
// so it answers ping's bare Calls with Errors) says that it is meant for mxp echo-server
// and what to use instead; it used to say only "3 lost".
func TestPingAgainstMeshHints(t *testing.T) {
	dir := startDev(t)
	info, err := readEdgeInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, json := range []bool{false, true} {
		args := []string{"ping", "--addr", info.EdgeAddr, "--server-pubkey", info.PublicKey, "--count", "3"}
		if json {
			args = append(args, "--json")
		}
		code, out, errOut := runCLI(context.Background(), args...)
		if code != 1 || !strings.Contains(errOut, "answered 3 of 3 calls with an MXP Error") ||
			!strings.Contains(errOut, "ping is for mxp echo-server") || !strings.Contains(errOut, "mxp call --to NAME") {
			t.Errorf("mxp %s: exit %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, out, errOut)
		}
	}
}
