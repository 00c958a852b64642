package config

import (
	"strings"
	"testing"
	"time"
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
