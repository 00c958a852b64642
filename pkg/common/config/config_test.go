package config

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/security"
)

type httpCfg struct {
	Addr string `yaml:"addr" flag:"http" usage:"HTTP listen address"`
}

type testCfg struct {
	Name     string          `yaml:"name"`
	Lease    time.Duration   `yaml:"lease" flag:"lease"`
	Level    string          `yaml:"log_level" reload:"live"`
	Max      int             `yaml:"max" reload:"live"`
	Debug    bool            `yaml:"debug" flag:"debug"`
	Tags     []string        `yaml:"tags"`
	Token    security.Secret `yaml:"token"`
	HTTP     httpCfg         `yaml:"http"`
	Limits   security.Limits `yaml:"limits"`
	Internal string          `yaml:"-"`
}

func (c testCfg) Validate() error {
	if c.Max > 100 {
		return FieldError("max", "must be at most 100, got %d", c.Max)
	}
	return nil
}

func defaults() testCfg {
	return testCfg{Name: "def", Lease: 30 * time.Second, Level: "info", Max: 10, HTTP: httpCfg{Addr: ":9090"}}
}

func writeFile(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "cfg.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLayers(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "name: file\nlease: 20s\nmax: 20\ntags: [a, b]\nhttp:\n  addr: ':1'\ntoken: s3cret\nlimits:\n  max_payload_bytes: 4096\n")
	tests := []struct {
		name string
		env  []string
		args []string
		want func(c testCfg) bool
	}{
		{"defaults only", []string{}, nil, func(c testCfg) bool { return c.Name == "def" && c.Lease == 30*time.Second }},
		{"file over defaults", []string{"MXP_TEST_CONFIG=" + file}, nil, func(c testCfg) bool {
			return c.Name == "file" && c.Lease == 20*time.Second && c.HTTP.Addr == ":1" && len(c.Tags) == 2 &&
				c.Token.Reveal() == "s3cret" && c.Limits.MaxPayloadBytes == 4096 && c.Level == "info"
		}},
		{"env over file", []string{"MXP_TEST_CONFIG=" + file, "MXP_TEST_LEASE=5s", "MXP_TEST_HTTP_ADDR=:2", "MXP_TEST_TAGS=x,y,z"}, nil,
			func(c testCfg) bool {
				return c.Lease == 5*time.Second && c.HTTP.Addr == ":2" && len(c.Tags) == 3 && c.Name == "file"
			}},
		{"flags over env", []string{"MXP_TEST_LEASE=5s", "MXP_TEST_HTTP_ADDR=:2"}, []string{"--config", file, "--lease", "1s", "--debug"},
			func(c testCfg) bool {
				return c.Lease == time.Second && c.HTTP.Addr == ":2" && c.Debug && c.Name == "file"
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &Loader[testCfg]{Service: "test", Defaults: defaults, Env: tc.env, Args: tc.args}
			c, err := l.Load()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		file      string
		env       []string
		args      []string
		key, from string
	}{
		{"file type", "lease: soon\n", nil, nil, "lease", "file"},
		{"file unknown", "http:\n  adr: x\n", nil, nil, "http.adr", "file"},
		{"file nested shape", "http: 5\n", nil, nil, "http", "file"},
		{"env type", "", []string{"MXP_TEST_MAX=lots"}, nil, "max", "env MXP_TEST_MAX"},
		{"env unknown", "", []string{"MXP_TEST_NOPE=1"}, nil, "", "env MXP_TEST_NOPE"},
		{"flag type", "", nil, []string{"--lease=x"}, "lease", "flag --lease"},
		{"validation", "max: 1000\n", nil, nil, "max", "validation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &Loader[testCfg]{Service: "test", Defaults: defaults, Env: tc.env, Args: tc.args}
			if tc.file != "" {
				l.File = writeFile(t, dir, tc.file)
			}
			_, err := l.Load()
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if ce.Key != tc.key || !strings.HasPrefix(ce.Source, tc.from) {
				t.Fatalf("err key=%q source=%q, want %q %q (%v)", ce.Key, ce.Source, tc.key, tc.from, err)
			}
		})
	}
	l := &Loader[testCfg]{Service: "test", Defaults: defaults, Args: []string{"-h"}}
	l.FlagSet = flag.NewFlagSet("t", flag.ContinueOnError)
	l.FlagSet.SetOutput(new(strings.Builder))
	if _, err := l.Load(); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestDigestExcludesSecrets(t *testing.T) {
	a, b := defaults(), defaults()
	a.Token = security.NewSecret("one")
	b.Token = security.NewSecret("two")
	if Digest(a) != Digest(b) {
		t.Fatal("digest depends on a secret value")
	}
	b.Max = 11
	if Digest(a) == Digest(b) || len(Digest(a)) != 64 {
		t.Fatal("digest must change with a setting")
	}
}

func TestKeys(t *testing.T) {
	ks := Keys[testCfg]("registry")
	found := map[string]KeyInfo{}
	for _, k := range ks {
		found[k.Key] = k
	}
	if k := found["http.addr"]; k.Env != "MXP_REGISTRY_HTTP_ADDR" || k.Flag != "http" || k.Live {
		t.Fatalf("http.addr = %+v", k)
	}
	if !found["limits.rate_per_second"].Live || !found["log_level"].Live {
		t.Fatal("live tags not reported")
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "max: 20\nlog_level: info\nname: a\n")
	l := &Loader[testCfg]{Service: "test", Defaults: defaults, File: file, Env: []string{}}
	c, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(l, c, nil)
	var seen []int
	w.OnChange(func(old, new *testCfg) { seen = append(seen, old.Max, new.Max) })
	d0 := w.Digest()

	// Live and restart-only changes together: the live one applies, the other is held.
	writeFile(t, dir, "max: 30\nlog_level: debug\nname: b\n")
	res, err := w.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if w.Current().Max != 30 || w.Current().Level != "debug" || w.Current().Name != "a" {
		t.Fatalf("after reload: %+v", w.Current())
	}
	if strings.Join(res.RestartRequired, ",") != "name" || len(res.Changed) != 2 || w.Digest() == d0 {
		t.Fatalf("result %+v", res)
	}
	if len(seen) != 2 || seen[0] != 20 || seen[1] != 30 {
		t.Fatalf("OnChange saw %v", seen)
	}

	// Rejected reloads keep the running config.
	for _, bad := range []string{"max: 1000\n", "max: [\n", "bogus: 1\n"} {
		writeFile(t, dir, bad)
		d := w.Digest()
		if _, err := w.Reload(); err == nil {
			t.Fatalf("%q: reload accepted", bad)
		}
		if w.Current().Max != 30 || w.Digest() != d {
			t.Fatalf("%q: running config changed", bad)
		}
	}
	if w.Failures() != 3 || w.Reloads() != 1 {
		t.Fatalf("failures=%d reloads=%d", w.Failures(), w.Reloads())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatcherRunFileAndSIGHUP(t *testing.T) {
	// Keep SIGHUP from terminating the test binary while Run is not yet listening.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	dir := t.TempDir()
	file := writeFile(t, dir, "max: 1\n")
	l := &Loader[testCfg]{Service: "test", Defaults: defaults, File: file, Env: []string{}}
	c, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(l, c, nil)
	w.Debounce = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	// File change: rewrite until the watcher (which may still be starting) sees it.
	waitFor(t, "file reload", func() bool {
		writeFile(t, dir, "max: 2\n")
		time.Sleep(20 * time.Millisecond)
		return w.Current().Max == 2
	})
	// Rename-and-replace, as editors and ConfigMaps do.
	tmp := filepath.Join(dir, "cfg.yaml.tmp")
	os.WriteFile(tmp, []byte("max: 3\n"), 0o600)
	os.Rename(tmp, file)
	waitFor(t, "rename reload", func() bool { return w.Current().Max == 3 })

	// SIGHUP reloads even when nothing changed: count reloads.
	before := w.Reloads()
	waitFor(t, "SIGHUP reload", func() bool {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		time.Sleep(20 * time.Millisecond)
		return w.Reloads() > before
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func FuzzLoadFile(f *testing.F) {
	f.Add("name: x\nlease: 3s\nhttp:\n  addr: ':1'\ntags: [a]\n")
	f.Add("max: [\n")
	f.Add("&a x: *a\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Skip()
		}
		l := &Loader[testCfg]{Service: "test", Defaults: defaults, File: p, Env: []string{}}
		_, _ = l.Load()
	})
}

// TestClientVariablesAreNotUnknownKeys: a client's variable in a service's namespace
// (MXP_EDGE_KEY, which a shell pointed at a mesh exports) is not refused as an unknown
// key; any other unknown variable still is.
func TestClientVariablesAreNotUnknownKeys(t *testing.T) {
	type cfg struct {
		KeyFile string `yaml:"key_file"`
	}
	load := func(env ...string) error {
		l := &Loader[cfg]{Service: "edge", Defaults: func() cfg { return cfg{} }, Env: env}
		_, err := l.Load()
		return err
	}
	if err := load("MXP_EDGE_KEY=abc", "MXP_EDGE_KEY_FILE=/k"); err != nil {
		t.Fatalf("MXP_EDGE_KEY refused: %v", err)
	}
	if err := load("MXP_EDGE_KEYS=abc"); err == nil || !strings.Contains(err.Error(), "no such config key") {
		t.Fatalf("an unknown variable accepted: %v", err)
	}
}
