package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/common/lifecycle"
)

type fakeCfg struct {
	Level string `yaml:"log_level" reload:"live"`
	Size  int    `yaml:"size" reload:"live"`
	Name  string `yaml:"name"`
}

// fakeService records what it was built with and what reloads reached it.
type fakeService struct {
	name, cfgName string
	size          atomic.Int64
	ran           atomic.Bool
}

func (f *fakeService) Name() string { return f.name }
func (f *fakeService) Run(ctx context.Context) error {
	f.ran.Store(true)
	<-ctx.Done()
	return nil
}

func fakeModule(name string, requires ...string) (Module, func() *fakeService) {
	var built atomic.Pointer[fakeService]
	m := Define(Def[fakeCfg]{
		Name: name, Requires: requires,
		Defaults: func() fakeCfg { return fakeCfg{Level: "info", Size: 1, Name: "default"} },
		Level:    func(c *fakeCfg) string { return c.Level },
		New: func(s *Setup[fakeCfg]) (lifecycle.Service, error) {
			f := &fakeService{name: name, cfgName: s.Config.Name}
			f.size.Store(int64(s.Config.Size))
			s.Watcher.OnChange(func(_, c *fakeCfg) { f.size.Store(int64(c.Size)) })
			built.Store(f)
			return f, nil
		},
	})
	return m, built.Load
}

func TestResolveTargets(t *testing.T) {
	a, _ := fakeModule("a")
	b, _ := fakeModule("b", "a")
	c, _ := fakeModule("c")
	list := []Module{a, b, c}
	for _, tc := range []struct {
		targets []string
		want    string
		err     string
	}{
		{nil, "a,b,c", ""},
		{[]string{"all"}, "a,b,c", ""},
		{[]string{"b"}, "a,b", ""}, // b requires a
		{[]string{"c", " b", "b"}, "a,b,c", ""},
		{[]string{"c"}, "c", ""},
		{[]string{"d"}, "", `unknown target "d" (known: a, b, c, all)`},
	} {
		got, err := ResolveTargets(list, tc.targets)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%v: err %v, want %s", tc.targets, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("%v: %v %v, want %s", tc.targets, got, err, tc.want)
		}
	}
	bad, _ := fakeModule("x", "nothing")
	if _, err := ResolveTargets([]Module{bad}, []string{"x"}); err == nil || !strings.Contains(err.Error(), `requires unknown module "nothing"`) {
		t.Errorf("unknown requirement: %v", err)
	}
}

// TestProcess runs two modules of a list of three in one process: each reads its file
// section and its environment (over the presets, under the overrides), the module not
// targeted is not built, Reload reaches the services, and a bad section is a
// *ConfigError naming the key.
func TestProcess(t *testing.T) {
	a, builtA := fakeModule("a")
	b, builtB := fakeModule("b")
	c, builtC := fakeModule("c")
	file := filepath.Join(t.TempDir(), "mesh.yaml")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log:\n  level: error\na:\n  size: 5\nb:\n  size: 6\nc:\n  size: 7\n")
	p, err := StartProcess(context.Background(), ProcessOptions{
		Modules: []Module{a, b, c}, Targets: []string{"a", "b"}, ConfigFile: file,
		Env:       []string{"MXP_B_SIZE=8", "MXP_MESH_HTTP_ADDR=127.0.0.1:0"},
		LogWriter: ioDiscard{},
		Preset:    map[string]map[string]string{ProcessName: {"bus.embedded.dont_listen": "true"}, "a": {"size": "2"}, "b": {"name": "preset"}},
		Override:  map[string]map[string]string{"a": {"name": "override"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if builtC() != nil || p.Service("c") != nil {
		t.Fatal("c is not a target but was built")
	}
	if got, name := builtA().size.Load(), builtA().cfgName; got != 5 || name != "override" {
		t.Errorf("a.size = %d (want 5: the file over the preset), a.name = %q (want the override)", got, name)
	}
	if got, name := builtB().size.Load(), builtB().cfgName; got != 8 || name != "preset" {
		t.Errorf("b.size = %d (want 8: MXP_B_SIZE over the file), b.name = %q (want the preset)", got, name)
	}
	if p.HTTPAddr() == "" || strings.HasSuffix(p.HTTPAddr(), ":0") {
		t.Errorf("HTTP not bound from MXP_MESH_HTTP_ADDR: %q", p.HTTPAddr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// Reload: a's size is live and comes from the file; b's environment still wins.
	write("a:\n  size: 12\nb:\n  size: 10\n")
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if a, b := builtA().size.Load(), builtB().size.Load(); a != 12 || b != 8 {
		t.Errorf("after reload a.size = %d (want 12), b.size = %d (want 8)", a, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !builtA().ran.Load() || !builtB().ran.Load() {
		t.Error("a target did not run")
	}

	// A bad section: a *ConfigError that names the key, and nothing left running.
	write("b:\n  size: many\n")
	_, err = StartProcess(context.Background(), ProcessOptions{Modules: []Module{a, b}, ConfigFile: file, Env: []string{},
		LogWriter: ioDiscard{}, Preset: map[string]map[string]string{ProcessName: {"bus.embedded.dont_listen": "true", "http.addr": ""}}})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Module != "b" || !strings.Contains(err.Error(), "b.size") {
		t.Fatalf("bad section: %v", err)
	}
	// An unknown top-level key is the shared loader's error.
	write("nope: 1\n")
	_, err = StartProcess(context.Background(), ProcessOptions{Modules: []Module{a}, ConfigFile: file, Env: []string{}, LogWriter: ioDiscard{}})
	if !errors.As(err, &ce) || ce.Module != ProcessName || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown top-level key: %v", err)
	}
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// TestProcessInstances: an Instance is its module built again under its own name: the
// module's file section and presets, its own overrides over them; it runs, reloads and
// has its own bus connection. An instance of a module not in the list, or under a taken
// name, is a *ConfigError.
func TestProcessInstances(t *testing.T) {
	var built []*fakeService
	m := Define(Def[fakeCfg]{
		Name:     "a",
		Defaults: func() fakeCfg { return fakeCfg{Level: "info", Size: 1, Name: "default"} },
		New: func(s *Setup[fakeCfg]) (lifecycle.Service, error) {
			f := &fakeService{name: s.Base.Metrics.Service(), cfgName: s.Config.Name}
			f.size.Store(int64(s.Config.Size))
			s.Watcher.OnChange(func(_, c *fakeCfg) { f.size.Store(int64(c.Size)) })
			built = append(built, f)
			return f, nil
		},
	})
	file := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := os.WriteFile(file, []byte("a:\n  size: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := map[string]string{"bus.embedded.dont_listen": "true", "http.addr": ""}
	p, err := StartProcess(context.Background(), ProcessOptions{
		Modules: []Module{m}, ConfigFile: file, Env: []string{}, LogWriter: ioDiscard{},
		Preset:    map[string]map[string]string{ProcessName: shared, "a": {"name": "preset"}},
		Instances: []Instance{{Module: "a", Name: "a-2", Override: map[string]string{"name": "second"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 2 || built[0].name != "a" || built[1].name != "a-2" {
		t.Fatalf("built %+v; want a, then a-2", built)
	}
	if built[1].size.Load() != 5 || built[1].cfgName != "second" || built[0].cfgName != "preset" {
		t.Errorf("a-2: size %d, name %q (want 5 from a's section, its own override); a: name %q",
			built[1].size.Load(), built[1].cfgName, built[0].cfgName)
	}
	if p.Service("a-2") != built[1] || p.BusConn("a-2") == nil || p.BusConn("a-2") == p.BusConn("a") {
		t.Error("a-2 is not its own service with its own bus connection")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if err := os.WriteFile(file, []byte("a:\n  size: 9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if built[1].size.Load() != 9 {
		t.Errorf("a-2 after reload: size %d, want 9", built[1].size.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !built[1].ran.Load() {
		t.Error("a-2 did not run")
	}
	for _, in := range []Instance{{Module: "nope", Name: "x"}, {Module: "a", Name: "a"}, {Module: "a"}} {
		_, err := StartProcess(context.Background(), ProcessOptions{Modules: []Module{m}, Env: []string{},
			LogWriter: ioDiscard{}, Preset: map[string]map[string]string{ProcessName: shared}, Instances: []Instance{in}})
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("instance %+v: %v, want a *ConfigError", in, err)
		}
	}
}
