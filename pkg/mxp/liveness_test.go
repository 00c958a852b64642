package mxp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// deadMeshEnv makes the test binary, re-executed, the mesh side of TestMeshKilledFailsCalls.
const deadMeshEnv = "MXP_TEST_DEAD_MESH"

// TestDeadMeshHelper is the mesh process of TestMeshKilledFailsCalls (run only when
// re-executed with deadMeshEnv set): it listens, prints its address and key, acknowledges
// every Call at the transport level and never answers, until it is killed.
func TestDeadMeshHelper(t *testing.T) {
	if os.Getenv(deadMeshEnv) == "" {
		t.Skip("the mesh process of TestMeshKilledFailsCalls")
	}
	sk, _ := GeneratePrivateKey()
	ctx := context.Background()
	l, err := Listen(ctx, "127.0.0.1:0", Options{PrivateKey: sk})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s %s\n", l.Addr(), l.PublicKey())
	for {
		c, err := l.Accept(ctx)
		if err != nil {
			os.Exit(1)
		}
		go func() {
			for {
				f, err := c.Receive(ctx)
				if err != nil {
					return
				}
				if f.Type == TypeCall {
					fmt.Println("holding", f.MessageID)
				}
			}
		}()
	}
}

// startDeadMesh re-executes the test binary as a mesh process that holds every Call, and
// returns it with its address and key, and a channel of the Calls it holds.
func startDeadMesh(t *testing.T) (*exec.Cmd, string, PublicKey, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeadMeshHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), deadMeshEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("the mesh process printed nothing")
	}
	var addr, key string
	if _, err := fmt.Sscanf(sc.Text(), "listening %s %s", &addr, &key); err != nil {
		t.Fatalf("mesh process: %q: %v", sc.Text(), err)
	}
	pk, err := ParsePublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan string, 64)
	go func() {
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "holding") {
				held <- sc.Text()
			}
		}
	}()
	return cmd, addr, pk, held
}

// kill -9 of the mesh side while Calls are in flight (acknowledged, unanswered): every
// Call fails with CodeUnreachable within about the transport's DeadPeerTimeout, not with
// a timeout at its 20 s deadline; and a new dial of the dead address fails at once.
func TestMeshKilledFailsCalls(t *testing.T) {
	cmd, addr, pk, held := startDeadMesh(t)
	ck, _ := GeneratePrivateKey()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, Options{PrivateKey: ck, ServerKey: pk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const calls = 8
	errs := make(chan error, calls)
	var wg sync.WaitGroup
	for i := 0; i < calls; i++ {
		wg.Go(func() {
			_, err := c.Call(ctx, &Frame{Type: TypeCall, Payload: []byte("hold me")})
			errs <- err
		})
	}
	for i := 0; i < calls; i++ {
		<-held
	}
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("kill -9 of the mesh: %d in-flight calls failed within %v", calls, time.Since(killed).Round(time.Millisecond))
	for i := 0; i < calls; i++ {
		err := <-errs
		if !errors.Is(err, CodeUnreachable) || !errors.Is(err, ErrConnClosed) || ErrorCodeFor(err) != CodeUnreachable {
			t.Fatalf("in-flight call after kill -9 of the mesh: %v, want unreachable", err)
		}
	}
	start := time.Now()
	_, err = Dial(ctx, addr, Options{PrivateKey: ck, ServerKey: pk})
	t.Logf("dial of the dead mesh failed after %v: %v", time.Since(start).Round(time.Microsecond), err)
	if !errors.Is(err, CodeUnreachable) || !errors.Is(err, transport.ErrPeerUnreachable) {
		t.Fatalf("dial of the killed mesh: %v, want unreachable", err)
	}
}
