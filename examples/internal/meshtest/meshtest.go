// Package meshtest starts a whole MXP mesh in one process for the examples' tests: the
// mesh package's module list (the registry with its memory store, the inference service
// with its built-in mock provider and models hosted by agents, an edge with the secure
// transport on a loopback port) on an in-process NATS bus, through mesh.Start, the
// function `mxp dev` runs; the HTTP server (metrics, health, the inference service's
// OpenAI-compatible API, InferenceURL) on a loopback port. No API keys.
//
// It is test support only: it must not be imported by the examples' programs themselves.
package meshtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/mesh"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/services/edge"
)

// Mesh is a running in-process mesh.
type Mesh struct {
	EdgeAddr string // the edge's secure UDP address (127.0.0.1:port)
	EdgeKey  string // the edge's public key, base64
	// InferenceURL is the base URL of the inference service's OpenAI-compatible API
	// (http://127.0.0.1:port/v1), as `mxp dev` serves it on its HTTP address.
	InferenceURL string
	// Mesh is the process: its services (Mesh.Inference(), ...), metrics and health.
	Mesh *mesh.Mesh
	// Edges are the extra edges of Options.Edges, by name.
	Edges map[string]Edge

	cancel context.CancelFunc
	done   chan error
}

// Options tune StartWith.
type Options struct {
	Logger *slog.Logger // every service's logger; nil discards
	Tracer trace.Tracer // every service's tracer (the edge, the registry, inference); nil: none
	// ConfigFile is a file in the mesh's format (a section per service, e.g. extra
	// inference models); "" for none.
	ConfigFile string
	// Targets are the services to run (mesh.Options.Targets); nil: all of them. Without
	// the edge, EdgeAddr and EdgeKey are empty; without inference, InferenceURL is.
	Targets []string
	// Edges names more edges on the same bus (mesh.Options.Edges), each with its own
	// key in dir; Mesh.Edges has their addresses and keys.
	Edges []string
}

// Edge is where an agent reaches one edge of the mesh.
type Edge struct {
	Addr string // secure UDP address (127.0.0.1:port)
	Key  string // public key, base64
}

// Start runs the mesh until Close. dir holds the edge's key file (created).
func Start(dir string, logger *slog.Logger) (*Mesh, error) {
	return StartWith(dir, Options{Logger: logger})
}

// New starts the mesh for a test or benchmark in a temporary directory, fails it if the
// mesh does not start, and stops the mesh when it ends (registered now, so it runs after
// the cleanups of agents started later: cleanups run last-in first-out).
func New(t testing.TB, logger *slog.Logger) *Mesh {
	t.Helper()
	m, err := Start(t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// StartWith is Start with options. It returns once every service is ready.
func StartWith(dir string, o Options) (*Mesh, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := mesh.Start(context.Background(), mesh.Options{
		ConfigFile: o.ConfigFile, Env: []string{}, Logger: o.Logger, Tracer: o.Tracer, Edges: o.Edges,
		Targets: o.Targets,
		Preset: map[string]map[string]string{
			service.ProcessName: {"bus.embedded.dont_listen": "true", "http.addr": "127.0.0.1:0"},
			"edge":              {"addr": "127.0.0.1:0", "key_file": filepath.Join(dir, "edge.key")},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("meshtest: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mesh{Mesh: p, cancel: cancel, done: make(chan error, 1), Edges: map[string]Edge{}}
	if p.Inference() != nil {
		m.InferenceURL = "http://" + p.HTTPAddr() + "/v1"
	}
	go func() { m.done <- p.Run(ctx) }()
	serving := func(e *edge.Edge) error { // an edge binds in Run
		select {
		case <-e.Serving():
			return nil
		case err := <-m.done:
			m.done <- err
			cancel()
			return fmt.Errorf("meshtest: mesh stopped before its edges served: %w", err)
		}
	}
	if e := p.Edge(); e != nil {
		if err := serving(e); err != nil {
			return nil, err
		}
		m.EdgeAddr, m.EdgeKey = e.Addrs()["secure"], e.PublicKey()
	}
	for _, name := range o.Edges {
		e := p.EdgeNamed(name)
		if err := serving(e); err != nil {
			return nil, err
		}
		m.Edges[name] = Edge{Addr: e.Addrs()["secure"], Key: e.PublicKey()}
	}
	deadline := time.Now().Add(20 * time.Second)
	for rep := p.Health.Ready(ctx); !rep.Ready; rep = p.Health.Ready(ctx) {
		if time.Now().After(deadline) {
			m.Close()
			return nil, fmt.Errorf("meshtest: mesh not ready: %+v", rep)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return m, nil
}

// Close stops every service and the bus, and returns what they reported.
func (m *Mesh) Close() error {
	m.cancel()
	err := <-m.done
	m.done <- err // a second Close returns the same
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Run runs a (with Agent.Run, so over the secure transport) until the test ends, and
// waits until it is Active. The returned function waits for Run to return and gives its
// error; the test's cleanup retires the agent and reports a failed Run.
func Run(t testing.TB, a *agent.Agent) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	var (
		once   sync.Once
		runErr error
	)
	wait := func() error {
		once.Do(func() { runErr = <-done })
		return runErr
	}
	ch, stop := a.Lifecycle().Subscribe(8)
	defer stop()
	timeout := time.After(20 * time.Second)
	for a.State() != agent.StateActive {
		select {
		case <-ch:
		case err := <-done:
			done <- err
			t.Fatalf("agent %s stopped: %v", a.Name(), err)
		case <-timeout:
			t.Fatalf("agent %s never became active (state %s)", a.Name(), a.State())
		}
	}
	t.Cleanup(func() {
		a.Retire()
		if err := wait(); err != nil {
			t.Errorf("agent %s: Run = %v", a.Name(), err)
		}
	})
	return wait
}

// Logs collects the services' JSON log lines (a Writer for log.Options) while they run,
// safely for their concurrent writes.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Lines parses every line written so far; a line that is not a JSON object is an error.
func (l *Logs) Lines() ([]map[string]any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("log line is not JSON: %s", sc.Text())
		}
		out = append(out, line)
	}
	return out, sc.Err()
}
