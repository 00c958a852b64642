package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestReadyz(t *testing.T) {
	tests := []struct {
		name     string
		checks   map[string]CheckFunc
		shutdown bool
		want     int
		failing  string
	}{
		{"no checks", nil, false, 200, ""},
		{"all ok", map[string]CheckFunc{"nats": func(context.Context) error { return nil }}, false, 200, ""},
		{"one failing", map[string]CheckFunc{
			"nats":  func(context.Context) error { return nil },
			"redis": func(context.Context) error { return errors.New("connection refused") },
		}, false, 503, "redis"},
		{"hung check times out", map[string]CheckFunc{"slow": func(ctx context.Context) error { <-ctx.Done(); time.Sleep(20 * time.Millisecond); return nil }}, false, 503, "slow"},
		{"shutting down", map[string]CheckFunc{"nats": func(context.Context) error { return nil }}, true, 503, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(func() string { return "abc" })
			c.Timeout = 50 * time.Millisecond
			for n, f := range tc.checks {
				c.Add(n, f)
			}
			if tc.shutdown {
				c.SetShuttingDown()
			}
			rec := httptest.NewRecorder()
			c.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tc.want {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			var rep Report
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.ConfigDigest != "abc" || len(rep.Checks) != len(tc.checks) || rep.ShuttingDown != tc.shutdown {
				t.Fatalf("report %+v", rep)
			}
			for _, r := range rep.Checks {
				if (r.Name == tc.failing) == r.OK {
					t.Fatalf("check %s ok=%v", r.Name, r.OK)
				}
			}
		})
	}
	rec := httptest.NewRecorder()
	NewChecker(nil).LiveHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/livez", nil))
	if rec.Code != 200 {
		t.Fatal("livez")
	}
}
