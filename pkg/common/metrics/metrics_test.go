package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/common/health"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	reg := NewRegistry("registry")
	reg.SetConfigDigest("d1")
	reg.SetConfigDigest("d2")
	reg.ObserveReload(false)
	chk := health.NewChecker(func() string { return "d2" })
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", Pprof: true}, reg, chk)
	s.Router().Get("/v1/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr()
	tests := []struct {
		path     string
		code     int
		contains []string
		absent   []string
	}{
		{"/metrics", 200, []string{"go_goroutines", "process_cpu_seconds_total", `mxp_config_info{digest="d2",service="registry"} 1`,
			`mxp_config_reloads_total{result="rejected",service="registry"} 1`}, []string{`digest="d1"`}},
		{"/livez", 200, []string{`"live":true`}, nil},
		{"/readyz", 200, []string{`"config_digest":"d2"`, `"ready":true`}, nil},
		{"/debug/pprof/", 200, []string{"goroutine"}, nil},
		{"/v1/hello", 200, []string{"hi"}, nil},
		{"/nope", 404, nil, nil},
	}
	for _, tc := range tests {
		code, body := get(t, base+tc.path)
		if code != tc.code {
			t.Fatalf("%s: code %d", tc.path, code)
		}
		for _, c := range tc.contains {
			if !strings.Contains(body, c) {
				t.Errorf("%s: missing %q", tc.path, c)
			}
		}
		for _, c := range tc.absent {
			if strings.Contains(body, c) {
				t.Errorf("%s: stale %q", tc.path, c)
			}
		}
	}
	chk.SetShuttingDown()
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Fatalf("readyz while shutting down = %d", code)
	}
}
