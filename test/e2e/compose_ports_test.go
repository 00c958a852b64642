package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestComposeUpRefusesTakenPorts: make compose-up (deploy/docker/compose-up.sh) names the
// published ports that are taken (a running mxp dev holds 4222 and 9000/udp) and stops
// before building an image or starting a container; it used to fail after 43 s of image
// building with "bind: address already in use" and leave Redis running. Compose and make
// are stand-ins here ("true" lists no running project; "false" fails if reached), so no
// Docker is needed.
func TestComposeUpRefusesTakenPorts(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("compose-up.sh is a bash script")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	free, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	root := repoRoot(t)
	cmd := exec.Command("bash", filepath.Join(root, "deploy", "docker", "compose-up.sh"))
	cmd.Env = append(os.Environ(), "COMPOSE=true", "MAKE=false",
		"MXP_NATS_PORT="+tcp.Addr().String(), "MXP_EDGE_UDP_PORT="+udp.LocalAddr().String(),
		"MXP_REGISTRY_PORT="+freeAddr, "MXP_INFERENCE_PORT="+freeAddr, "MXP_EDGE_HTTP_PORT="+freeAddr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	out := stderr.String()
	if code := cmd.ProcessState.ExitCode(); code != 1 || stdout.Len() != 0 ||
		!strings.Contains(out, "nothing was built or started") ||
		!strings.Contains(out, tcp.Addr().String()+"/tcp (nats) is in use") ||
		!strings.Contains(out, udp.LocalAddr().String()+"/udp (edge) is in use") ||
		strings.Contains(out, freeAddr) || !strings.Contains(out, "MXP_EDGE_UDP_PORT=") {
		t.Fatalf("compose-up: %v (exit %d)\nstdout %s\nstderr %s", err, code, stdout.String(), out)
	}
}
