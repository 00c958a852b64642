package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestSectionsAndPresets: a shared file with a section per service, read by one loader per
// section and one for the shared keys (the other sections skipped); the layers stay
// defaults < preset < file < environment < override, and errors name section.key.
func TestSectionsAndPresets(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "name: shared\nsvc:\n  lease: 20s\n  max: 20\nother:\n  anything: 1\n")
	svc := &Loader[testCfg]{Service: "svc", Defaults: defaults, File: file, Section: "svc",
		Env:      []string{"MXP_SVC_MAX=30", "MXP_SVC_CONFIG=/nonexistent"},
		Preset:   map[string]string{"lease": "5s", "log_level": "warn", "name": "preset"},
		Override: map[string]string{"http.addr": ":7"}}
	c, err := svc.Load()
	if err != nil {
		t.Fatal(err)
	}
	// lease: file over preset; max: env over file; log_level, name: preset over
	// defaults; http.addr: override. The shared key "name" is not the section's.
	if c.Lease != 20*time.Second || c.Max != 30 || c.Level != "warn" || c.Name != "preset" || c.HTTP.Addr != ":7" {
		t.Fatalf("section config %+v", c)
	}
	if svc.FilePath() != file {
		t.Fatalf("MXP_SVC_CONFIG must not replace the process's file: %s", svc.FilePath())
	}

	// The shared keys: the other sections are skipped, an unknown top-level key is not.
	shared := &Loader[testCfg]{Service: "mesh", Defaults: defaults, File: file, Env: []string{}, Skip: []string{"svc", "other"}}
	if c, err := shared.Load(); err != nil || c.Name != "shared" || c.Lease != 30*time.Second {
		t.Fatalf("shared keys: %+v %v", c, err)
	}
	shared.Skip = []string{"svc"}
	if _, err := shared.Load(); err == nil || !strings.Contains(err.Error(), "other") {
		t.Fatalf("an unknown section must be an error naming it: %v", err)
	}

	// Errors in a section name the section; a bad preset or override names its key.
	bad := writeFile(t, dir, "svc:\n  max: lots\n")
	if _, err := (&Loader[testCfg]{Service: "svc", Defaults: defaults, File: bad, Section: "svc", Env: []string{}}).Load(); err == nil || !strings.Contains(err.Error(), "svc.max") {
		t.Fatalf("section error: %v", err)
	}
	if _, err := (&Loader[testCfg]{Service: "svc", Defaults: defaults, Env: []string{}, Override: map[string]string{"nope": "1"}}).Load(); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown override key: %v", err)
	}
	// A file without the section sets nothing.
	if c, err := (&Loader[testCfg]{Service: "x", Defaults: defaults, File: file, Section: "x", Env: []string{}}).Load(); err != nil || c.Name != "def" {
		t.Fatalf("absent section: %+v %v", c, err)
	}
}

// FuzzSectionedFile feeds any file to a section's loader and to the shared keys' loader
// (the other sections skipped): neither panics, every error is a *Error, and a file the
// section's loader accepts gives the same config as the section alone in a file of its
// own.
func FuzzSectionedFile(f *testing.F) {
	f.Add("name: x\nsvc:\n  lease: 3s\n  tags: [a]\nother: {a: 1}\n")
	f.Add("svc: [\n")
	f.Add("svc: 3\n")
	f.Add("- svc\n")
	f.Add("svc: &a {max: 2}\nother: *a\n")
	f.Add("svc:\n  http: {addr: ':1'}\n  limits: {max_payload_bytes: 9}\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Skip()
		}
		svc := &Loader[testCfg]{Service: "svc", Defaults: defaults, File: p, Section: "svc", Env: []string{}}
		got, err := svc.Load()
		checkTyped(t, err)
		shared := &Loader[testCfg]{Service: "mesh", Defaults: defaults, File: p, Skip: []string{"svc", "other"}, Env: []string{}}
		_, serr := shared.Load()
		checkTyped(t, serr)
		if err != nil {
			return
		}
		// The section alone, re-encoded, loads to the same config.
		var doc yaml.Node
		if yaml.Unmarshal([]byte(body), &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			return
		}
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value != "svc" {
				continue
			}
			b, merr := yaml.Marshal(root.Content[i+1])
			if merr != nil {
				return
			}
			alone := filepath.Join(dir, "alone.yaml")
			if os.WriteFile(alone, b, 0o600) != nil {
				t.Skip()
			}
			want, aerr := (&Loader[testCfg]{Service: "svc", Defaults: defaults, File: alone, Env: []string{}}).Load()
			if aerr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("section %+v, alone %+v", got, want)
			}
		}
	})
}

// checkTyped fails unless every error err joins is a *Error.
func checkTyped(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			checkTyped(t, e)
		}
		return
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
}
