package security

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSecretNeverPrinted(t *testing.T) {
	const v = "hunter2-very-secret"
	s := NewSecret(v)
	type wrapper struct {
		Name  string
		Token Secret
		Ptr   *Secret
	}
	w := wrapper{Name: "x", Token: s, Ptr: &s}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("m", "token", s, "w", w)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("m", "token", s, "ptr", &s)
	js, _ := json.Marshal(w)
	txt, _ := s.MarshalText()
	y, _ := s.MarshalYAML()
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", s),
		"%+v":  fmt.Sprintf("%+v", w),
		"%#v":  fmt.Sprintf("%#v", w),
		"%s":   fmt.Sprintf("%s", s),
		"%q":   fmt.Sprintf("%q", s),
		"%x":   fmt.Sprintf("%x", s),
		"%v&":  fmt.Sprintf("%v", &s),
		"json": string(js),
		"text": string(txt),
		"yaml": fmt.Sprint(y),
		"slog": logBuf.String(),
		"str":  s.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, v) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s does not say it is redacted: %s", name, out)
		}
	}
	if s.Reveal() != v || !s.IsSet() {
		t.Fatal("Reveal")
	}
	var back Secret
	if err := json.Unmarshal([]byte(`"abc"`), &back); err != nil || back.Reveal() != "abc" {
		t.Fatalf("UnmarshalJSON: %v %q", err, back.Reveal())
	}
	if err := back.UnmarshalText([]byte("def")); err != nil || back.Reveal() != "def" {
		t.Fatal("UnmarshalText")
	}
}

func TestLimiterPerKey(t *testing.T) {
	l := NewLimiter(LimiterConfig{Rate: 1, Burst: 2})
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i, want := range []bool{true, true, false} {
		if got := l.Allow("a"); got != want {
			t.Fatalf("a #%d = %v, want %v", i, got, want)
		}
	}
	if !l.Allow("b") {
		t.Fatal("b must have its own bucket")
	}
	now = now.Add(time.Second)
	if !l.Allow("a") {
		t.Fatal("a must refill after 1s")
	}
	l.SetRate(0, 1)
	now = now.Add(10 * time.Second)
	if first, second := l.Allow("a"), l.Allow("a"); first && second {
		t.Fatal("SetRate not applied")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	tests := []struct {
		name               string
		maxKeys            int
		keys               int
		advance            time.Duration
		wantLen, wantEvict int
	}{
		{"lru bound", 100, 1000, 0, 100, 900},
		{"idle eviction", 1000, 50, time.Hour, 1, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(LimiterConfig{Rate: 10, Burst: 10, MaxKeys: tc.maxKeys, IdleTimeout: time.Minute})
			now := time.Unix(0, 0)
			l.now = func() time.Time { return now }
			for i := range tc.keys {
				l.Allow(fmt.Sprint("k", i))
			}
			now = now.Add(tc.advance)
			if tc.advance > 0 {
				l.Sweep()
				l.Allow("fresh")
			}
			if l.Len() != tc.wantLen || int(l.Evictions()) != tc.wantEvict {
				t.Fatalf("len=%d evictions=%d, want %d %d", l.Len(), l.Evictions(), tc.wantLen, tc.wantEvict)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	d := Limits{}.WithDefaults()
	if d.MaxPayloadBytes != 1<<20 || d.Validate() != nil {
		t.Fatal("defaults")
	}
	for _, tc := range []struct {
		l   Limits
		key string
	}{
		{Limits{MaxPayloadBytes: -1}, "max_payload_bytes"},
		{Limits{MaxConcurrent: -1}, "max_concurrent"},
		{Limits{RatePerSecond: -1}, "rate_per_second"},
	} {
		if err := tc.l.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.key) {
			t.Errorf("%+v: %v, want error naming %s", tc.l, err, tc.key)
		}
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	l := NewLimiter(LimiterConfig{Rate: 1e9, Burst: 1 << 30, MaxKeys: 10_000})
	keys := make([]string, 20_000)
	for i := range keys {
		keys[i] = fmt.Sprint("peer-", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		l.Allow(keys[i%len(keys)])
	}
}
