//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// project is the Compose project name of the test: its containers, network and volumes
// never mix with a `make compose-up` of the same checkout.
const project = "mxpe2e"

// compose runs Docker Compose (the plugin `docker compose` or the standalone
// `docker-compose`) on the repository's docker-compose.yml.
type compose struct {
	t    *testing.T
	cmd  []string
	file string
	env  []string
}

func (c *compose) run(ctx context.Context, args ...string) (string, error) {
	full := append(append(append([]string{}, c.cmd[1:]...), "-p", project, "-f", c.file), args...)
	cmd := exec.CommandContext(ctx, c.cmd[0], full...)
	cmd.Env = c.env
	cmd.Dir = filepath.Dir(c.file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", c.cmd[0], strings.Join(full, " "), err, out)
	}
	return string(out), nil
}

// findCompose returns the Compose command line, or "" with the reason it is unusable.
func findCompose() ([]string, string) {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, ""
	}
	if exec.Command("docker-compose", "version").Run() == nil {
		return []string{"docker-compose"}, ""
	}
	return nil, "neither `docker compose` nor `docker-compose` works"
}

// requireDocker skips the test when this machine cannot run it.
func requireDocker(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed:", err)
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Skipf("docker is not usable (docker info: %v): %s", err, bytes.TrimSpace(out))
	}
	cmd, why := findCompose()
	if cmd == nil {
		t.Skip(why)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed on the host, so mxp-mesh/redis:dev cannot be built without pulling an image")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed:", err)
	}
	return cmd
}

// freePort returns a loopback port of the network ("tcp" or "udp") that nobody uses now.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// poll calls f until it reports done, or fails the test with f's last error when the
// bound passes (a bound on waiting for containers, not an assertion on speed).
func poll(t *testing.T, what string, bound time.Duration, f func() (bool, error)) {
	t.Helper()
	end := time.Now().Add(bound)
	for {
		done, err := f()
		if done {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v (last: %v)", what, bound, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func httpGet(url string) (int, []byte, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

var publicKeyRE = regexp.MustCompile(`"public_key":"([A-Za-z0-9+/=]+)"`)

func TestComposeE2E(t *testing.T) {
	composeCmd := requireDocker(t)
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()

	// The images, and with them a static mxp CLI in bin/image-bin.
	mk := exec.CommandContext(ctx, "make", "images")
	mk.Dir = root
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make images: %v\n%s", err, out)
	}
	mxpBin := filepath.Join(root, "bin", "image-bin", "mxp")

	ports := map[string]int{
		"MXP_EDGE_UDP_PORT":  freePort(t, "udp"),
		"MXP_EDGE_HTTP_PORT": freePort(t, "tcp"),
		"MXP_REGISTRY_PORT":  freePort(t, "tcp"),
		"MXP_INFERENCE_PORT": freePort(t, "tcp"),
		"MXP_NATS_PORT":      freePort(t, "tcp"),
	}
	env := os.Environ()
	for k, p := range ports {
		env = append(env, fmt.Sprintf("%s=127.0.0.1:%d", k, p))
	}
	c := &compose{t: t, cmd: composeCmd, file: filepath.Join(root, "docker-compose.yml"), env: env}

	// A run interrupted before its cleanup may have left the project behind.
	if _, err := c.run(ctx, "down", "-v", "--remove-orphans"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if t.Failed() {
			logs, _ := c.run(cctx, "logs", "--no-color")
			t.Logf("compose logs:\n%s", logs)
		}
		if _, err := c.run(cctx, "down", "-v", "--remove-orphans", "--timeout", "10"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if _, err := c.run(ctx, "up", "-d"); err != nil {
		t.Fatal(err)
	}

	edgeHTTP := fmt.Sprintf("http://127.0.0.1:%d", ports["MXP_EDGE_HTTP_PORT"])
	registryHTTP := fmt.Sprintf("http://127.0.0.1:%d", ports["MXP_REGISTRY_PORT"])
	inferenceHTTP := fmt.Sprintf("http://127.0.0.1:%d", ports["MXP_INFERENCE_PORT"])
	for _, base := range []string{registryHTTP, edgeHTTP, inferenceHTTP} {
		poll(t, base+"/readyz", 2*time.Minute, func() (bool, error) {
			code, body, err := httpGet(base + "/readyz")
			if err != nil {
				return false, err
			}
			return code == http.StatusOK, fmt.Errorf("status %d: %s", code, body)
		})
	}

	var edgeKey string
	poll(t, "the edge's public key in its log", time.Minute, func() (bool, error) {
		logs, err := c.run(ctx, "logs", "--no-color", "edge")
		if m := publicKeyRE.FindStringSubmatch(logs); m != nil {
			edgeKey = m[1]
			return true, nil
		}
		return false, err
	})
	edgeAddr := fmt.Sprintf("127.0.0.1:%d", ports["MXP_EDGE_UDP_PORT"])
	dataDir := t.TempDir()
	conn := []string{"--edge", edgeAddr, "--edge-key", edgeKey, "--data-dir", dataDir}
	cli := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, mxpBin, append(args, conn...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return string(out), fmt.Errorf("mxp %s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out), nil
	}

	// The echo agent registers through the published UDP port.
	suffix := make([]byte, 4)
	crand.Read(suffix)
	name := "e2e-echo-" + hex.EncodeToString(suffix)
	echo := exec.CommandContext(ctx, mxpBin, append([]string{"agent", "echo", "--name", name}, conn...)...)
	var echoErr bytes.Buffer
	echo.Stderr = &echoErr
	echoOut, err := echo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	echoDone := make(chan error, 1)
	echoStopped := false
	defer func() {
		if !echoStopped {
			echo.Process.Kill()
			<-echoDone
		}
	}()
	registered := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(echoOut)
		for sc.Scan() {
			// "echo agent <id> registered as "<name>" ..."
			if f := strings.Fields(sc.Text()); len(f) > 3 && f[0] == "echo" && f[3] == "registered" {
				select {
				case registered <- f[2]:
				default:
				}
			}
		}
		echoDone <- echo.Wait()
	}()
	var id string
	select {
	case id = <-registered:
	case err := <-echoDone:
		echoStopped = true
		t.Fatalf("mxp agent echo exited: %v: %s", err, echoErr.String())
	case <-ctx.Done():
		t.Fatalf("mxp agent echo did not register: %s", echoErr.String())
	}

	// A Call through the edge reaches the agent and its payload comes back.
	payload := fmt.Sprintf(`{"e2e":%q}`, name)
	out, err := cli("call", "--to", name, "--data", payload)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != payload {
		t.Fatalf("mxp call answered %q, want %q", out, payload)
	}

	// Discovery through the edge lists it.
	out, err = cli("agents", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []struct {
		ID, Name string
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("mxp agents --json: %v: %s", err, out)
	}
	found := false
	for _, a := range listed {
		found = found || (a.ID == id && a.Name == name)
	}
	if !found {
		t.Fatalf("mxp agents does not list %s (%s): %s", name, id, out)
	}

	// The registry container's HTTP API serves it, from Redis.
	code, body, err := httpGet(registryHTTP + "/v1/agents/" + id)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/agents/%s: %d %v: %s", id, code, err, body)
	}
	var rec struct{ Name, State string }
	if err := json.Unmarshal(body, &rec); err != nil || rec.Name != name || rec.State != "online" {
		t.Fatalf("registry record %s (%v), want %s online", body, err, name)
	}
	exists, err := c.run(ctx, "exec", "-T", "redis", "/usr/bin/redis-cli", "exists", "mxp:registry:agent:"+id)
	if err != nil || strings.TrimSpace(exists) != "1" {
		t.Fatalf("Redis has no mxp:registry:agent:%s (%q, %v)", id, exists, err)
	}

	// The agent stops: the edge deregisters it and the registry forgets it.
	if err := echo.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-echoDone:
		echoStopped = true
	case <-ctx.Done():
		t.Fatal("mxp agent echo did not stop on SIGINT")
	}
	poll(t, "the registry forgets the stopped agent", time.Minute, func() (bool, error) {
		code, body, err := httpGet(registryHTTP + "/v1/agents/" + id)
		if err != nil {
			return false, err
		}
		if code == http.StatusNotFound {
			return true, nil
		}
		var rec struct{ State string }
		json.Unmarshal(body, &rec)
		return code == http.StatusOK && rec.State != "online", fmt.Errorf("status %d: %s", code, body)
	})
}
