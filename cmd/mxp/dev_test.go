package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDev runs `mxp dev` in process on free loopback ports with its data directory in a
// temporary directory, and returns that directory once every service is ready.
func startDev(t *testing.T) string {
	t.Helper()
	dir, _ := startStoppableDev(t)
	return dir
}

// startStoppableDev is startDev, and a function that stops the mesh (as Ctrl-C does) and
// returns once it has stopped; the test's cleanup stops it otherwise.
func startStoppableDev(t *testing.T) (dir string, stop func()) {
	t.Helper()
	dir, _, _, stop = startDevWith(t, devOptions{EdgeAddr: "127.0.0.1:0", CompatAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		NATSAddr: "off", LogLevel: "error"})
	return dir, stop
}

// startDevWith runs `mxp dev` with o (its data directory a temporary one) and returns that
// directory, the edge info and the output once every target is ready, and a function
// that stops the mesh (as Ctrl-C does) and returns once it has stopped; the test's
// cleanup stops it otherwise.
func startDevWith(t *testing.T, o devOptions) (string, EdgeInfo, *syncBuffer, func()) {
	t.Helper()
	o.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan EdgeInfo, 1)
	done := make(chan error, 1)
	var out syncBuffer
	o.ready = func(i EdgeInfo) { ready <- i }
	go func() {
		env := &cliEnv{Stdout: &out, Stderr: &out}
		done <- runDev(ctx, env, o)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("mxp dev: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	var info EdgeInfo
	select {
	case info = <-ready:
		if info.PublicKey == "" || info.EdgeAddr == "" {
			t.Fatalf("edge info %+v", info)
		}
	case err := <-done:
		t.Fatalf("mxp dev ended: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("mxp dev not ready:\n%s", out.String())
	}
	// The hints name the data directory (not the default one), or they would reach another mesh.
	if s := out.String(); !strings.Contains(s, "edge public key") || !strings.Contains(s, "mxp agent echo"+dataDirFlag(o.DataDir)+"\n") ||
		!strings.Contains(s, "mxp call --to echo --data hello"+dataDirFlag(o.DataDir)+"\n") || dataDirFlag(o.DataDir) == "" {
		t.Fatalf("banner:\n%s", s)
	}
	return o.DataDir, info, &out, stop
}

// runCLI executes an mxp command line and returns its exit status, stdout and stderr.
func runCLI(ctx context.Context, args ...string) (int, string, string) {
	var stdout, stderr syncBuffer
	code := execute(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestTour(t *testing.T) {
	dir := startDev(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// mxp agent echo, in the background.
	var echoOut syncBuffer
	echoDone := make(chan int, 1)
	go func() {
		echoDone <- execute(ctx, []string{"agent", "echo", "--data-dir", dir}, strings.NewReader(""), &echoOut, &echoOut)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(echoOut.String(), "registered as \"echo\"") {
		if time.Now().After(deadline) {
			t.Fatalf("echo agent did not register:\n%s", echoOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if want := "try: mxp call --to echo --data hello --data-dir " + dir + "\n"; !strings.Contains(echoOut.String(), want) {
		t.Fatalf("echo agent's hint: want %q in\n%s", want, echoOut.String())
	}

	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		out, err   string
		checkJSONs bool
	}{
		{"call by name", []string{"call", "--to", "echo", "--data", "hello"}, 0, "hello\n", "", false},
		{"call JSON", []string{"call", "--to", "echo", "--data", `{"a":1}`, "--timeout", "5s"}, 0, "{\"a\":1}\n", "", false},
		{"call unknown id", []string{"call", "--to", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "--data", "x"}, 1, "", "error: unreachable: ", false},
		{"call unknown name", []string{"call", "--to", "nobody", "--data", "x"}, 1, "", "no agent, service or agent id \"nobody\"", false},
		{"call inference", []string{"call", "--to", "inference", "--data", `{"messages":[{"role":"user","content":"hi"}]}`}, 0, "Mock reply to: hi", "", false},
		{"agents table", []string{"agents"}, 0, "echo", "", false},
		{"agents by capability", []string{"agents", "--capability", "nothing-has-this"}, 0, "no agents\n", "", false},
		{"call needs --to", []string{"call", "--data", "x"}, 2, "", "--to is required", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--data-dir", dir)
			code, out, errOut := runCLI(ctx, args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("mxp %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, out, errOut)
			}
		})
	}

	// The plaintext listener serves the same mesh.
	info, err := readEdgeInfo(dir)
	if err != nil || info.CompatAddr == "" {
		t.Fatalf("edge.json: %+v %v", info, err)
	}
	if code, out, errOut := runCLI(ctx, "call", "--compat", info.CompatAddr, "--to", "echo", "--data", "plain"); code != 0 || out != "plain\n" {
		t.Fatalf("call over the plaintext listener: %d %q %s", code, out, errOut)
	}

	code, out, errOut := runCLI(ctx, "agents", "--json", "--data-dir", dir)
	var agents []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &agents) != nil || len(agents) != 1 || agents[0]["name"] != "echo" {
		t.Fatalf("agents --json: %d %s %s", code, out, errOut)
	}

	code, out, errOut = runCLI(ctx, "bench", "--to", "echo", "--concurrency", "4", "--duration", "300ms", "--size", "64", "--json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("bench: %d %s %s", code, out, errOut)
	}
	var rep map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench --json: %v: %s", err, out)
	}
	for _, k := range []string{"calls", "ok", "throughput_per_s", "latency_us", "errors"} {
		if _, ok := rep[k]; !ok {
			t.Fatalf("bench --json lacks %q: %s", k, out)
		}
	}
	var lat map[string]int64
	if err := json.Unmarshal(rep["latency_us"], &lat); err != nil || len(lat) != 4 || lat["p50"] <= 0 || lat["p999"] < lat["p50"] {
		t.Fatalf("latency_us = %s", rep["latency_us"])
	}
	var calls, ok uint64
	json.Unmarshal(rep["calls"], &calls)
	json.Unmarshal(rep["ok"], &ok)
	if calls == 0 || ok != calls {
		t.Fatalf("bench calls %d ok %d: %s", calls, ok, out)
	}

	cancel() // Ctrl-C on the echo agent: it deregisters and exits 0
	select {
	case code := <-echoDone:
		if code != 0 || !strings.Contains(echoOut.String(), "stopped after") {
			t.Fatalf("echo agent exit %d:\n%s", code, echoOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("echo agent did not stop")
	}
	code, out, _ = runCLI(context.Background(), "agents", "--data-dir", dir)
	if code != 0 || out != "no agents\n" {
		t.Fatalf("after the echo agent stopped: %d %q", code, out)
	}
}

func TestClientCommandsWithoutMesh(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI(context.Background(), "call", "--to", "echo", "--data", "x", "--data-dir", dir)
	if code != 1 || !strings.Contains(errOut, "no mesh found") || !strings.Contains(errOut, "`mxp dev --data-dir "+dir+"`") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// A stale edge.json (mxp dev killed) names a process that is gone.
	if err := writeEdgeInfo(dir, EdgeInfo{EdgeAddr: "127.0.0.1:1", PublicKey: "x", PID: deadPID(t)}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(context.Background(), "agents", "--data-dir", dir)
	if code != 1 || !strings.Contains(errOut, "is not running; start it with `mxp dev --data-dir "+dir+"`") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// deadPID returns the id of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run a child process:", err)
	}
	return cmd.Process.Pid
}

// TestDevHelp: mxp dev --help names --target (with the modules) and --config.
func TestDevHelp(t *testing.T) {
	if code, out, _ := runCLI(context.Background(), "dev", "--help"); code != 0 || !strings.Contains(out, "-target") ||
		!strings.Contains(out, "-config") || !strings.Contains(out, "registry,inference,edge") {
		t.Errorf("mxp dev --help lacks --target or --config:\n%s", out)
	}
	// A target that is not in the list, or a config file that is not there, is a usage
	// error naming it (exit 2), before anything starts.
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "edge,nope"}, `unknown target "nope" (known: registry, inference, edge, all)`},
		{[]string{"--config", dir + "/missing.yaml"}, "missing.yaml"},
	} {
		args := append([]string{"dev", "--data-dir", dir, "--nats-addr", "off", "--http-addr", "", "--edge-addr", "127.0.0.1:0"}, tc.args...)
		if code, _, errOut := runCLI(context.Background(), args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("mxp %s: exit %d, stderr %s", strings.Join(args, " "), code, errOut)
		}
	}
}

func TestDataDirFlag(t *testing.T) {
	for dir, want := range map[string]string{
		"":         "",
		".mxp":     "",
		"./.mxp":   "",
		"d3":       " --data-dir d3",
		"/tmp/a b": " --data-dir '/tmp/a b'",
		"it's":     ` --data-dir 'it'\''s'`,
	} {
		if got := dataDirFlag(dir); got != want {
			t.Errorf("dataDirFlag(%q) = %q, want %q", dir, got, want)
		}
	}
}

// TestDevAddrInUse: mxp dev on a taken port (a third mxp dev on the default ports) names
// the address and the flags that move it, and removes the data directory it created (it
// left an empty one), but not one that was there.
func TestDevAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	existing := t.TempDir()
	for _, dir := range []string{filepath.Join(t.TempDir(), "d3"), existing} {
		code, _, errOut := runCLI(context.Background(), "dev", "--data-dir", dir, "--http-addr", taken,
			"--edge-addr", "127.0.0.1:0", "--nats-addr", "off", "--log-level", "error")
		if code != 1 || !strings.Contains(errOut, taken) || !strings.Contains(errOut, "address already in use") ||
			!strings.Contains(errOut, "--http-addr") {
			t.Errorf("mxp dev on a taken port: exit %d\n%s", code, errOut)
		}
		_, statErr := os.Stat(dir)
		if dir == existing && statErr != nil {
			t.Errorf("the existing data directory %s: %v", dir, statErr)
		}
		if dir != existing && !errors.Is(statErr, fs.ErrNotExist) {
			t.Errorf("the data directory %s it created is left: %v", dir, statErr)
		}
	}
}
