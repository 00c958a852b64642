// Package mesh is the one list of the mesh's services, in the shape of Grafana Loki's
// pkg/loki/modules.go: each entry is a service package's Module (its name, config
// section, constructor and requirements), and a target (--target all, or any subset such
// as edge,registry) resolves to the modules it names and what they require. `mxp dev`
// and the examples' test meshes run the list through Start; each service binary
// (mxp-<name>) runs its own entry alone through the same module runner
// (pkg/common/service), so every wiring gets the same config layers (defaults < file <
// MXP_* environment < flags), hot reload, logs, tracing and metrics.
//
// The list imports every service, so it lives above them: pkg/ never imports it, and no
// service does (they meet on the bus). Adding a service (tools, policy) is one line in
// Modules.
package mesh

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/edge"
	"github.com/mxp-mesh/mesh/services/inference"
	"github.com/mxp-mesh/mesh/services/registry"
)

// Modules is the mesh, in start order. None requires another: each needs only the bus
// and the HTTP server, which the process provides to every target.
var Modules = []service.Module{
	registry.Module,
	inference.Module,
	edge.Module,
}

// Options configure Start: service.ProcessOptions without the list.
type Options struct {
	// Targets: service.TargetAll (the default) or module names.
	Targets []string
	// ConfigFile is the shared file: bus, http, log and shutdown_timeout at the top
	// level, one section per module (edge:, registry:, inference:).
	ConfigFile string
	// Env is the environment (nil: os.Environ()); LogWriter gets the JSON logs (nil:
	// stderr).
	Env       []string
	LogWriter io.Writer
	// Logger and Tracer, when set, are every service's (tests); see
	// service.ProcessOptions.
	Logger *slog.Logger
	Tracer trace.Tracer
	// Preset and Override: values laid over a module's defaults and over its environment,
	// by module name (service.ProcessName for the shared keys).
	Preset, Override map[string]map[string]string
	// Edges names more edges on the same bus beside the list's (tests that need agents on
	// several edges): each is an instance of edge.Module (service.Instance) named
	// "edge-<name>", with the edge's config but its own key file (EdgeKeyFile of the
	// edge's key_file preset), a free loopback port and no plaintext listener; EdgeNamed
	// returns it.
	Edges []string
}

// Start builds the targets of the list on one bus and one HTTP server (see
// service.StartProcess); Run the result.
func Start(ctx context.Context, o Options) (*Mesh, error) {
	var extra []service.Instance
	for _, name := range o.Edges {
		over := map[string]string{"addr": "127.0.0.1:0", "compat_addr": ""}
		if kf := o.Preset["edge"]["key_file"]; kf != "" {
			over["key_file"] = EdgeKeyFile(kf, name)
		}
		extra = append(extra, service.Instance{Module: "edge", Name: edgeInstance(name), Override: over})
	}
	p, err := service.StartProcess(ctx, service.ProcessOptions{
		Modules: Modules, Targets: o.Targets, ConfigFile: o.ConfigFile, Env: o.Env,
		LogWriter: o.LogWriter, Logger: o.Logger, Tracer: o.Tracer, Preset: o.Preset, Override: o.Override,
		Version: mxp.Version, Instances: extra,
	})
	if err != nil {
		return nil, err
	}
	return &Mesh{Process: p}, nil
}

// Mesh is a running process of the list.
type Mesh struct {
	*service.Process
}

// Edge is the edge, or nil when it is not a target.
func (m *Mesh) Edge() *edge.Edge {
	e, _ := m.Service("edge").(*edge.Edge)
	return e
}

// EdgeNamed is the extra edge name of Options.Edges, or nil.
func (m *Mesh) EdgeNamed(name string) *edge.Edge {
	e, _ := m.Service(edgeInstance(name)).(*edge.Edge)
	return e
}

// EdgeBus is the bus connection of the extra edge name (a test closes it to take that
// edge off the bus), or nil.
func (m *Mesh) EdgeBus(name string) *nats.Conn { return m.BusConn(edgeInstance(name)) }

// EdgeKeyFile is the key file of the extra edge name beside keyFile: edge-<name>.key in
// its directory.
func EdgeKeyFile(keyFile, name string) string {
	return filepath.Join(filepath.Dir(keyFile), edgeInstance(name)+".key")
}

func edgeInstance(name string) string { return "edge-" + name }

// Registry is the registry, or nil when it is not a target.
func (m *Mesh) Registry() *registry.Service {
	r, _ := m.Service(registry.Name).(*registry.Service)
	return r
}

// Inference is the inference service, or nil when it is not a target.
func (m *Mesh) Inference() *inference.Service {
	s, _ := m.Service(inference.Name).(*inference.Service)
	return s
}
