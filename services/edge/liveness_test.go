package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport/netem"
)

// killedAgentEnv makes the test binary, re-executed, the agent of TestKilledAgentHoldingCall:
// its value is "edge-address edge-key".
const killedAgentEnv = "MXP_TEST_KILLED_AGENT"

// TestKilledAgentHelper is the agent process of TestKilledAgentHoldingCall (it runs only
// when re-executed with killedAgentEnv set): it connects to the edge over the secure
// transport, registers, prints its id, and holds every Call it gets (the transport
// acknowledges it; the agent never answers) until it is killed.
func TestKilledAgentHelper(t *testing.T) {
	env := os.Getenv(killedAgentEnv)
	if env == "" {
		t.Skip("the agent process of TestKilledAgentHoldingCall")
	}
	addr, keyText, _ := strings.Cut(env, " ")
	key, err := transport.ParsePublicKey(keyText)
	if err != nil {
		t.Fatal(err)
	}
	c := dialSecure(t, addr, key)
	id := registerAgent(t, c, "victim", "hold")
	fmt.Println("registered", id)
	for f := range c.Inbound() {
		if f.Type == mxp.TypeCall {
			fmt.Println("holding", f.MessageID)
		}
	}
}

// kill -9 of an agent that holds a Call (delivered and acknowledged by its transport, not
// answered): the caller, with a 20 s deadline, gets unreachable within about the edge's
// DeadPeerTimeout, not timeout after 20 s; the edge deregisters the agent, so a new Call
// to it is answered unreachable at once instead of timing out until its lease ends.
func TestKilledAgentHoldingCall(t *testing.T) {
	bs := testBus(t)
	reg := startFakeRegistry(t, bs)
	e, k := startSecureEdge(t, bs)
	caller := dialSecure(t, e.addr, k)

	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledAgentHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), killedAgentEnv+"="+e.addr+" "+k.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var id mxp.AgentID
	for line := range lines {
		if text, ok := strings.CutPrefix(line, "registered "); ok {
			if id, err = mxp.ParseAgentID(text); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if id.IsZero() {
		t.Fatal("the agent process did not register")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := caller.CallAgent(ctx, id, []byte("hold this"), 20*time.Second)
		errc <- err
	}()
	for line := range lines {
		if strings.HasPrefix(line, "holding ") {
			break
		}
	}
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = <-errc
	t.Logf("kill -9 of the agent holding a Call: the caller got %v after %v", err, time.Since(killed).Round(time.Millisecond))
	if !errors.Is(err, mxp.CodeUnreachable) {
		t.Fatalf("caller of a killed agent: %v, want unreachable (not timeout)", err)
	}
	start := time.Now()
	_, err = caller.CallAgent(ctx, id, []byte("anyone?"), 20*time.Second)
	t.Logf("a new Call to the killed agent: %v after %v", err, time.Since(start).Round(time.Microsecond))
	if !errors.Is(err, mxp.CodeUnreachable) {
		t.Fatalf("new call to a killed agent: %v, want unreachable", err)
	}
	waitFor(t, "the killed agent deregistered", func() bool { return !reg.has(id) })
	if n := testutil.ToFloat64(e.m.peerCloses.WithLabelValues("secure", "unreachable")); n != 1 {
		t.Fatalf("peer_closes_total{secure,unreachable} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(e.m.orphanedCalls); n != 1 {
		t.Fatalf("orphaned_calls_total = %v, want 1", n)
	}
}

// The edge vanishes (its address stops answering; here a relay in front of it closes)
// while a client's Call waits at the edge: the client (the CLI's) fails the Call with
// unreachable within about DeadPeerTimeout, not at its 20 s deadline; a new dial of the
// dead address fails at once with unreachable.
func TestEdgeVanishesClientCallsFail(t *testing.T) {
	bs := testBus(t)
	startFakeRegistry(t, bs)
	e, k := startSecureEdge(t, bs)
	holder := dialSecure(t, e.addr, k) // an agent that never answers
	id := registerAgent(t, holder, "holder")
	relay, err := netem.New("127.0.0.1:0", e.addr, netem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	caller := dialSecure(t, relay.Addr().String(), k)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := caller.CallAgent(ctx, id, []byte("wait for me"), 20*time.Second)
		errc <- err
	}()
	f := <-holder.Inbound() // the Call reached the agent: the caller's request is in flight
	if f.Type != mxp.TypeCall {
		t.Fatalf("the agent got %v, want a Call", f.Type)
	}
	vanished := time.Now()
	relay.Close()
	err = <-errc
	t.Logf("edge vanished: the client's call failed after %v: %v", time.Since(vanished).Round(time.Millisecond), err)
	if !errors.Is(err, mxp.CodeUnreachable) || !errors.Is(err, mxp.ErrConnClosed) {
		t.Fatalf("client call when the edge vanished: %v, want unreachable", err)
	}
	key, _ := transport.GeneratePrivateKey()
	start := time.Now()
	_, err = mxp.Dial(ctx, relay.Addr().String(), mxp.Options{PrivateKey: key, ServerKey: k})
	t.Logf("dial of the vanished edge failed after %v: %v", time.Since(start).Round(time.Microsecond), err)
	if !errors.Is(err, mxp.CodeUnreachable) {
		t.Fatalf("dial of a dead edge address: %v, want unreachable", err)
	}
}
