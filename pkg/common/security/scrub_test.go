package security

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestScrubberForms(t *testing.T) {
	var s Scrubber
	if got := s.Scrub("nothing registered"); got != "nothing registered" {
		t.Fatalf("zero Scrubber changed text: %q", got)
	}
	key := "sk-test/abc+def=\"quoted\"<x>&ok"
	s.Register(NewSecret(key), NewSecret("short"), Secret{})
	for _, tc := range []struct{ name, in string }{
		{"plain", "Incorrect API key provided: " + key + "."},
		{"query", "GET /v1/models?key=" + url.QueryEscape(key) + "&alt=sse"},
		{"path", "https://example.test/" + url.PathEscape(key) + "/x"},
		{"json", `{"error":{"message":"bad key \"sk-test/abc+def=\"quoted\"\u003cx\u003e\u0026ok\""}}`},
		{"header echo", "Authorization: Bearer " + key + "\r\nX-Api-Key: " + key},
		{"twice", key + key},
	} {
		got := s.Scrub(tc.in)
		if strings.Contains(got, key) || strings.Contains(got, url.QueryEscape(key)) || strings.Contains(got, "abc+def") {
			t.Errorf("%s: %q still carries the key", tc.name, got)
		}
		if !strings.Contains(got, Redacted) {
			t.Errorf("%s: %q has no %s", tc.name, got, Redacted)
		}
	}
	if got := s.Scrub("a short word"); got != "a short word" {
		t.Errorf("a secret under MinScrubbedLen was scrubbed: %q", got)
	}
}

func TestRegisterIn(t *testing.T) {
	type provider struct {
		Kind   string
		APIKey Secret
	}
	type config struct {
		Keys      []Secret
		Providers map[string]provider
		Ptr       *provider
		Plain     string
	}
	var s Scrubber
	s.RegisterIn(&config{
		Keys:      []Secret{NewSecret("client-token-1234")},
		Providers: map[string]provider{"a": {Kind: "openai", APIKey: NewSecret("provider-key-5678")}},
		Ptr:       &provider{APIKey: NewSecret("pointer-key-9012")},
		Plain:     "not-a-secret-value",
	})
	got := s.Scrub("client-token-1234 provider-key-5678 pointer-key-9012 not-a-secret-value")
	want := Redacted + " " + Redacted + " " + Redacted + " not-a-secret-value"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestExcerpt(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  401\n\tUnauthorized\x00  ", "401 Unauthorized"},
		{"Authorization: Bearer abc.def-ghi", "Authorization: Bearer " + Redacted},
		{"https://up.test/x?alt=sse&key=AIzaSyZZZZ&b=1", "https://up.test/x?alt=sse&key=" + Redacted + "&b=1"},
		{`{"api_key": "zzz-unregistered"}`, `{"api_key": "` + Redacted + `"}`},
		{"use sk-proj-0123456789abcdef now", "use " + Redacted + " now"},
	} {
		if got := Excerpt(tc.in, 200); got != tc.want {
			t.Errorf("Excerpt(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Excerpt(strings.Repeat("é", 10), 7); got != "ééé…" {
		t.Errorf("cut: %q", got)
	}
}

// FuzzExcerpt: whatever an upstream sends, the excerpt carries no registered secret, is
// valid UTF-8 without control characters, and is bounded.
func FuzzExcerpt(f *testing.F) {
	const key = "fuzz-secret-key-0123"
	RegisterSecrets(NewSecret(key))
	f.Add("Incorrect API key provided: "+key, 64)
	f.Add("?key="+url.QueryEscape(key), 10)
	f.Add("\x00\xff\n\t", 3)
	f.Fuzz(func(t *testing.T, in string, max int) {
		max = 1 + (max&0xffff)%512
		got := Excerpt(in, max)
		if strings.Contains(got, key) {
			t.Fatalf("key in %q", got)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8: %q", got)
		}
		if len(got) > max+len("…") {
			t.Fatalf("%d bytes > %d", len(got), max)
		}
		for _, r := range got {
			if unicode.IsControl(r) {
				t.Fatalf("control character in %q", got)
			}
		}
	})
}
