package service

import (
	"context"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
)

// recordingExporter keeps every span exported to it and counts its shutdowns.
type recordingExporter struct {
	mu        sync.Mutex
	spans     []sdktrace.ReadOnlySpan
	shutdowns int
}

func (e *recordingExporter) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans = append(e.spans, s...)
	return nil
}

func (e *recordingExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdowns++
	return nil
}

// spanService starts and ends one span with its Base's tracer when it runs.
type spanService struct {
	name  string
	base  *Base
	ended chan<- string
}

func (s *spanService) Name() string { return s.name }
func (s *spanService) Run(ctx context.Context) error {
	_, span := s.base.Tracer.Start(ctx, s.name+".work")
	span.End()
	s.ended <- s.name
	<-ctx.Done()
	return nil
}

func spanModule(name string, ended chan<- string) Module {
	return Define(Def[fakeCfg]{
		Name:     name,
		Defaults: func() fakeCfg { return fakeCfg{Level: "info", Size: 1} },
		New: func(s *Setup[fakeCfg]) (lifecycle.Service, error) {
			return &spanService{name: name, base: s.Base, ended: ended}, nil
		},
	})
}

// TestProcessOneTracerProvider: two modules of one process trace through one provider
// (installed as the global one): both spans reach the one exporter, under one resource
// (service.name mxp-mesh), each with its module's scope (mxp-<name>, mxp.service=<name>),
// and stopping the process flushes them and shuts the exporter down exactly once. Before,
// each module set up a provider of its own and overwrote the global one.
func TestProcessOneTracerProvider(t *testing.T) {
	exp := &recordingExporter{}
	ended := make(chan string, 2)
	p, err := StartProcess(context.Background(), ProcessOptions{
		Modules: []Module{spanModule("a", ended), spanModule("b", ended)}, Env: []string{}, LogWriter: ioDiscard{},
		SpanExporter: exp, Version: "9.9.9",
		Preset: map[string]map[string]string{ProcessName: {"bus.embedded.dont_listen": "true", "http.addr": ""}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !tracing.Enabled(p.mods["a"].base.Tracer) || !tracing.Enabled(otel.GetTracerProvider().Tracer("x")) {
		t.Fatal("the process's provider is not the modules' and the global one")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-ended
	<-ended
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	if exp.shutdowns != 1 {
		t.Errorf("exporter shut down %d times, want 1", exp.shutdowns)
	}
	var got []string
	for _, s := range exp.spans {
		res := s.Resource()
		if v, _ := res.Set().Value(semconv.ServiceNameKey); v.AsString() != "mxp-mesh" {
			t.Errorf("span %s: resource service.name %q, want mxp-mesh", s.Name(), v.AsString())
		}
		scope := s.InstrumentationScope()
		mod, _ := scope.Attributes.Value(tracing.ServiceKey)
		got = append(got, s.Name()+"@"+scope.Name+"/"+mod.AsString())
	}
	slices.Sort(got)
	if want := []string{"a.work@mxp-a/a", "b.work@mxp-b/b"}; !slices.Equal(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
}
