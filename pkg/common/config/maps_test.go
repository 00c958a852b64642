package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/security"
)

type backendCfg struct {
	Kind    string          `yaml:"kind"`
	Key     security.Secret `yaml:"key"`
	Timeout time.Duration   `yaml:"timeout"`
	Tags    []string        `yaml:"tags"`
	Limits  struct {
		Max int `yaml:"max"`
	} `yaml:"limits"`
}

type mapCfg struct {
	Addr     string                       `yaml:"addr" flag:"addr"`
	Backends map[string]backendCfg        `yaml:"backends" reload:"live"`
	Aliases  map[string]string            `yaml:"aliases" reload:"live"`
	Nested   map[string]map[string]int    `yaml:"nested"`
	Keys     []security.Secret            `yaml:"keys"`
	ByNumber map[int]string               `yaml:"by_number"`
	Weights  map[string]time.Duration     `yaml:"weights"`
	Empty    map[string]struct{ X int }   `yaml:"empty"`
	_        map[string]map[string]string // unexported fields are skipped
}

func mapDefaults() mapCfg {
	return mapCfg{
		Addr:     ":1",
		Backends: map[string]backendCfg{"local": {Kind: "local", Timeout: time.Second}},
		Aliases:  map[string]string{"a": "local"},
	}
}

func TestMaps(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     []string
		check   func(t *testing.T, c mapCfg)
		wantErr []string // substrings of the error; nil means success
	}{
		{name: "defaults kept without a file entry", file: "addr: x\n", check: func(t *testing.T, c mapCfg) {
			if len(c.Backends) != 1 || c.Backends["local"].Timeout != time.Second {
				t.Fatalf("backends %+v", c.Backends)
			}
		}},
		{name: "entries merge by key, each replaced whole",
			file: "backends:\n  remote: {kind: http, key: s3cret, timeout: 5s, tags: [a, b], limits: {max: 3}}\n  local: {kind: other}\naliases: {b: remote}\n",
			check: func(t *testing.T, c mapCfg) {
				r := c.Backends["remote"]
				if r.Kind != "http" || r.Key.Reveal() != "s3cret" || r.Timeout != 5*time.Second ||
					!reflect.DeepEqual(r.Tags, []string{"a", "b"}) || r.Limits.Max != 3 {
					t.Fatalf("remote %+v", r)
				}
				if l := c.Backends["local"]; l.Kind != "other" || l.Timeout != 0 {
					t.Fatalf("local replaced whole: %+v", l)
				}
				if !reflect.DeepEqual(c.Aliases, map[string]string{"a": "local", "b": "remote"}) {
					t.Fatalf("aliases %v", c.Aliases)
				}
			}},
		{name: "null entry is the zero value", file: "backends:\n  bare:\n", check: func(t *testing.T, c mapCfg) {
			if _, ok := c.Backends["bare"]; !ok || len(c.Backends) != 2 {
				t.Fatalf("backends %+v", c.Backends)
			}
		}},
		{name: "nested maps and map of durations", file: "nested: {a: {x: 1, y: 2}}\nweights: {fast: 10ms}\n", check: func(t *testing.T, c mapCfg) {
			if c.Nested["a"]["y"] != 2 || c.Weights["fast"] != 10*time.Millisecond {
				t.Fatalf("nested %v weights %v", c.Nested, c.Weights)
			}
		}},
		{name: "secret list from the environment", env: []string{"MXP_MAPS_KEYS=k1, k2"}, check: func(t *testing.T, c mapCfg) {
			if len(c.Keys) != 2 || c.Keys[1].Reveal() != "k2" {
				t.Fatalf("keys %v", c.Keys)
			}
		}},
		{name: "unknown key inside an entry", file: "backends:\n  remote: {kind: http, colour: red}\n",
			wantErr: []string{"backends.remote.colour", ":2", "no such config key"}},
		{name: "bad value inside an entry", file: "backends:\n  remote: {timeout: soon}\n",
			wantErr: []string{"backends.remote.timeout", "not a duration"}},
		{name: "map given a list", file: "aliases: [a, b]\n", wantErr: []string{"aliases", "want a mapping"}},
		{name: "non-string map keys", file: "by_number: {1: x}\n", wantErr: []string{"by_number", "unsupported map type"}},
		{name: "map from the environment", env: []string{"MXP_MAPS_ALIASES=a=b"}, wantErr: []string{"aliases", "config file only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &Loader[mapCfg]{Service: "maps", Defaults: mapDefaults, Env: tc.env}
			if tc.env == nil {
				l.Env = []string{}
			}
			if tc.file != "" {
				l.File = writeFile(t, t.TempDir(), tc.file)
			}
			cfg, err := l.Load()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, cfg)
				return
			}
			if err == nil {
				t.Fatalf("no error, config %+v", cfg)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestMapDefaultsNotWritten(t *testing.T) {
	shared := map[string]string{"a": "x"}
	l := &Loader[mapCfg]{Service: "maps", Env: []string{}, Defaults: func() mapCfg { return mapCfg{Aliases: shared} },
		File: writeFile(t, t.TempDir(), "aliases: {b: y}\n")}
	if _, err := l.Load(); err != nil {
		t.Fatal(err)
	}
	if len(shared) != 1 {
		t.Fatalf("the defaults' map was written: %v", shared)
	}
}

func TestMapReloadIsLive(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "aliases: {b: one}\n")
	l := &Loader[mapCfg]{Service: "maps", Env: []string{}, Defaults: mapDefaults, File: path}
	cfg, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(l, cfg, nil)
	var got map[string]string
	w.OnChange(func(_, n *mapCfg) { got = n.Aliases })
	writeFile(t, dir, "aliases: {b: two}\nnested: {a: {x: 1}}\n")
	res, err := w.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if got["b"] != "two" || !reflect.DeepEqual(res.Changed, []string{"aliases"}) ||
		!reflect.DeepEqual(res.RestartRequired, []string{"nested"}) || w.Current().Nested != nil {
		t.Fatalf("changed %v restart %v aliases %v nested %v", res.Changed, res.RestartRequired, got, w.Current().Nested)
	}
}

func FuzzLoadFileMaps(f *testing.F) {
	f.Add("backends:\n  remote: {kind: http, key: k, timeout: 5s, tags: [a], limits: {max: 3}}\naliases: {b: c}\n")
	f.Add("nested: {a: {x: 1}}\nweights: {w: 1s}\nby_number: {1: x}\n")
	f.Add("backends: &x {a: *x}\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Skip()
		}
		l := &Loader[mapCfg]{Service: "maps", Defaults: mapDefaults, File: p, Env: []string{}}
		_, _ = l.Load()
	})
}
