package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// signalBuffer is a syncBuffer that closes a channel the first time its content contains
// a given string: a test waits on it instead of polling.
type signalBuffer struct {
	syncBuffer
	want string
	once sync.Once
	seen chan struct{}
}

func newSignalBuffer(want string) *signalBuffer {
	return &signalBuffer{want: want, seen: make(chan struct{})}
}

func (s *signalBuffer) Write(p []byte) (int, error) {
	n, err := s.syncBuffer.Write(p)
	if strings.Contains(s.String(), s.want) {
		s.once.Do(func() { close(s.seen) })
	}
	return n, err
}

// wait waits until the string was written, or fails the test after a minute (a hang guard,
// not a timing assertion).
func (s *signalBuffer) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s.seen:
	case <-time.After(time.Minute):
		t.Fatalf("%s: %q never written:\n%s", what, s.want, s.String())
	}
}

// TestBenchStopsWhenMeshStops: a bench whose mesh stops ends at once with the calls made so
// far and says why; it used to keep calling the closed connection until --duration ended
// ("errors closed 2005051").
func TestBenchStopsWhenMeshStops(t *testing.T) {
	dir, stopMesh := startStoppableDev(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentOut := newSignalBuffer(`registered as "echo"`)
	agentDone := make(chan int, 1)
	go func() {
		agentDone <- execute(ctx, []string{"agent", "echo", "--data-dir", dir}, strings.NewReader(""), agentOut, agentOut)
	}()
	agentOut.wait(t, "mxp agent echo")

	progress := newSignalBuffer("calls ")
	var benchOut syncBuffer
	benchDone := make(chan int, 1)
	go func() {
		benchDone <- execute(ctx, []string{"bench", "--to", "echo", "--concurrency", "2", "--duration", "10m", "--json", "--data-dir", dir},
			strings.NewReader(""), &benchOut, progress)
	}()
	progress.wait(t, "mxp bench progress")
	stopMesh()
	select {
	case code := <-benchDone:
		if code != 1 || !strings.Contains(progress.String(), "bench: stopped early: the connection to the edge ended after") ||
			!strings.Contains(benchOut.String(), `"calls":`) {
			t.Fatalf("bench exit %d\nstdout %s\nstderr %s", code, benchOut.String(), progress.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("bench still running a minute after the mesh stopped:\n%s", progress.String())
	}
	cancel()
	<-agentDone
}
