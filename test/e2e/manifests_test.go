package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the folder holding go.work, found from the test's working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the test's directory")
		}
		dir = parent
	}
}

// decodeAll parses every YAML document of a file.
func decodeAll(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// dig walks nested maps by key; nil when a step is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// ourImage reports whether an image is one that `make images` builds.
func ourImage(image string) bool {
	return strings.HasPrefix(image, "mxp-mesh/") && strings.HasSuffix(image, ":dev")
}

func TestKubernetesManifests(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s (%v)", err)
	}
	kinds := map[string]map[string]any{} // "Kind/name" → document
	for _, f := range files {
		for _, doc := range decodeAll(t, f) {
			kind, name := str(doc["kind"]), str(dig(doc, "metadata", "name"))
			if str(doc["apiVersion"]) == "" || kind == "" || name == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name: %v", f, doc)
				continue
			}
			if kind != "Namespace" && str(dig(doc, "metadata", "namespace")) != "mxp" {
				t.Errorf("%s: %s/%s is not in namespace mxp", f, kind, name)
			}
			if _, dup := kinds[kind+"/"+name]; dup {
				t.Errorf("%s: %s/%s defined twice", f, kind, name)
			}
			kinds[kind+"/"+name] = doc
		}
	}
	tests := []struct {
		deployment string
		image      string
		command    string // the container's first arg, when the image is shared
	}{
		{"nats", "mxp-mesh/mxp:dev", "nats"},
		{"redis", "mxp-mesh/redis:dev", ""},
		{"registry", "mxp-mesh/mxp-registry:dev", ""},
		{"inference", "mxp-mesh/mxp-inference:dev", ""},
		{"edge", "mxp-mesh/mxp-edge:dev", ""},
	}
	for _, tc := range tests {
		t.Run(tc.deployment, func(t *testing.T) {
			d, ok := kinds["Deployment/"+tc.deployment]
			if !ok {
				t.Fatalf("no Deployment %s", tc.deployment)
			}
			if _, ok := kinds["Service/"+tc.deployment]; !ok {
				t.Errorf("no Service %s", tc.deployment)
			}
			containers := list(dig(d, "spec", "template", "spec", "containers"))
			if len(containers) == 0 {
				t.Fatal("no containers")
			}
			for _, c := range containers {
				image := str(dig(c, "image"))
				if !ourImage(image) {
					t.Errorf("image %q is not one `make images` builds", image)
				}
				if image != tc.image {
					t.Errorf("image %q, want %q", image, tc.image)
				}
				if p := str(dig(c, "imagePullPolicy")); p != "IfNotPresent" {
					t.Errorf("imagePullPolicy %q, want IfNotPresent", p)
				}
				// HTTP probes must hit the paths every service serves (pkg/common/metrics).
				for _, probe := range []string{"livenessProbe", "readinessProbe"} {
					if path := str(dig(c, probe, "httpGet", "path")); path != "" && path != "/livez" && path != "/readyz" {
						t.Errorf("%s path %q: the services serve /livez and /readyz", probe, path)
					}
				}
				// Service settings come from MXP_<SERVICE>_* variables; the loader rejects
				// unknown ones, so a misspelt or deprecated name is caught here.
				for _, e := range list(dig(c, "env")) {
					name := str(dig(e, "name"))
					if strings.HasPrefix(name, "MXP_") && tc.command == "" && tc.image != "mxp-mesh/redis:dev" &&
						!strings.HasPrefix(name, "MXP_"+strings.ToUpper(tc.deployment)+"_") {
						t.Errorf("env %s is not an MXP_%s_* variable", name, strings.ToUpper(tc.deployment))
					}
				}
				if tc.command != "" {
					args := list(dig(c, "args"))
					if len(args) == 0 || str(args[0]) != tc.command {
						t.Errorf("args %v, want %q first", args, tc.command)
					}
				}
			}
		})
	}
	svc := kinds["Service/edge"]
	if str(dig(svc, "spec", "sessionAffinity")) != "ClientIP" {
		t.Errorf("edge Service: sessionAffinity %v, want ClientIP", dig(svc, "spec", "sessionAffinity"))
	}
	udp := false
	for _, p := range list(dig(svc, "spec", "ports")) {
		udp = udp || str(dig(p, "protocol")) == "UDP"
	}
	if !udp {
		t.Error("edge Service has no UDP port")
	}
}

func TestComposeFile(t *testing.T) {
	docs := decodeAll(t, filepath.Join(repoRoot(t), "docker-compose.yml"))
	if len(docs) != 1 {
		t.Fatalf("%d documents in docker-compose.yml", len(docs))
	}
	services, _ := docs[0]["services"].(map[string]any)
	for _, name := range []string{"nats", "redis", "registry", "inference", "edge"} {
		s, ok := services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if image := str(dig(s, "image")); !ourImage(image) {
			t.Errorf("service %s: image %q is not one `make images` builds", name, image)
		}
		if dig(s, "build") != nil {
			t.Errorf("service %s builds from a Dockerfile; images come from `make images`", name)
		}
	}
	if store := str(dig(services["registry"], "environment", "MXP_REGISTRY_STORE")); !strings.HasPrefix(store, "redis://redis:") {
		t.Errorf("registry store %q, want the redis service", store)
	}
	udp := false
	for _, p := range list(dig(services["edge"], "ports")) {
		udp = udp || strings.HasSuffix(str(p), ":9000/udp")
	}
	if !udp {
		t.Error("edge does not publish 9000/udp")
	}
	for _, name := range []string{"nats", "redis"} {
		if dig(services[name], "healthcheck", "test") == nil {
			t.Errorf("service %s has no health check", name)
		}
	}
}
