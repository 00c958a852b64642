// Package meshtest starts a whole MXP mesh in one process for the examples' tests: an
// embedded NATS bus, the registry (memory store), the inference service (built-in mock
// provider and models hosted by agents; its OpenAI-compatible API on a loopback HTTP
// server, InferenceURL) and an edge with the secure transport on a loopback port. It wires the same
// constructors `mxp dev` does, with no network beyond loopback and no API keys.
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
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/edge"
	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/registry"
)

// Mesh is a running in-process mesh.
type Mesh struct {
	EdgeAddr string // the edge's secure UDP address (127.0.0.1:port)
	EdgeKey  string // the edge's public key, base64
	// InferenceURL is the base URL of the inference service's OpenAI-compatible API
	// (http://127.0.0.1:port/v1), as `mxp dev` serves it on its HTTP address.
	InferenceURL string

	http *httptest.Server

	bus    *bus.Bus
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// Options tune StartWith.
type Options struct {
	Logger *slog.Logger // every service's logger; nil discards
	Tracer trace.Tracer // every service's tracer (the edge, the registry, inference); nil: none
}

// Start runs the mesh until Close. dir holds the edge's key file.
func Start(dir string, logger *slog.Logger) (*Mesh, error) {
	return StartWith(dir, Options{Logger: logger})
}

// StartWith is Start with options.
func StartWith(dir string, o Options) (*Mesh, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b, err := bus.Start(bus.Config{Embedded: bus.EmbeddedConfig{DontListen: true}}, "meshtest", logger)
	if err != nil {
		return nil, err
	}
	m := &Mesh{bus: b}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	fail := func(err error) (*Mesh, error) {
		m.Close()
		return nil, err
	}
	conn := func(name string) (service.Deps, error) {
		nc, err := b.NewConn(name)
		if err != nil {
			return service.Deps{}, err
		}
		return service.Deps{Logger: logger, Conn: nc, Tracer: o.Tracer}, nil
	}

	regDeps, err := conn("registry")
	if err != nil {
		return fail(err)
	}
	rcfg := registry.DefaultConfig()
	rcfg.HTTP = ""
	reg, err := registry.New(rcfg, regDeps)
	if err != nil {
		return fail(fmt.Errorf("meshtest: registry: %w", err))
	}
	m.run("registry", func() error { return reg.Run(ctx) })

	infDeps, err := conn("inference")
	if err != nil {
		return fail(err)
	}
	inf, err := inference.New(inference.Defaults(), inference.Deps{Logger: logger, Conn: infDeps.Conn, Tracer: o.Tracer})
	if err != nil {
		return fail(fmt.Errorf("meshtest: inference: %w", err))
	}
	m.run("inference", func() error { return inf.Run(ctx) })
	m.http = httptest.NewServer(inf.Handler())
	m.InferenceURL = m.http.URL + "/v1"

	keyFile := filepath.Join(dir, "edge.key")
	key, err := mxp.GeneratePrivateKey()
	if err != nil {
		return fail(err)
	}
	if err := mxp.SavePrivateKey(keyFile, key); err != nil {
		return fail(err)
	}
	edgeDeps, err := conn("edge")
	if err != nil {
		return fail(err)
	}
	ecfg := edge.Defaults()
	ecfg.Addr, ecfg.KeyFile = "127.0.0.1:0", keyFile
	e, err := edge.New(ecfg, edge.Deps{Deps: edgeDeps})
	if err != nil {
		return fail(fmt.Errorf("meshtest: edge: %w", err))
	}
	m.run("edge", func() error { return e.Run(ctx) })
	for _, addr := range e.Addrs() {
		m.EdgeAddr = addr
	}
	m.EdgeKey = key.PublicKey().String()
	return m, nil
}

func (m *Mesh) run(name string, fn func() error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
			m.mu.Lock()
			m.errs = append(m.errs, fmt.Errorf("%s: %w", name, err))
			m.mu.Unlock()
		}
	}()
}

// Close stops every service and the bus, and returns what they reported.
func (m *Mesh) Close() error {
	if m.http != nil {
		m.http.Close()
	}
	m.cancel()
	m.wg.Wait()
	if m.bus != nil {
		_ = m.bus.Close()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(m.errs...)
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
