package security

import (
	"encoding/json"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// MinScrubbedLen is the shortest secret a Scrubber removes from text: a shorter value
// would match ordinary words and mangle every message, and is too weak to be a credential
// (provider keys and generated tokens are 20 bytes and more).
const MinScrubbedLen = 8

// Scrubber removes registered secrets from text that leaves the mesh: HTTP error
// bodies, bus and MXP error messages, logs. Each secret is matched as it is, URL-encoded
// (a key echoed from a query string) and JSON-escaped (a key echoed inside a JSON
// body); every occurrence becomes Redacted. The zero Scrubber is ready and removes
// nothing. Registration is append-only: a rotated key stays scrubbed, since old text may
// still carry it.
type Scrubber struct {
	mu    sync.Mutex
	forms map[string]struct{}
	r     atomic.Pointer[strings.Replacer] // nil while nothing is registered
}

// Register adds secrets; unset and short (< MinScrubbedLen) ones are ignored.
// Contract: once Register returns, every Scrub (on any goroutine) removes them.
func (s *Scrubber) Register(secrets ...Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	added := false
	for _, sec := range secrets {
		v := sec.Reveal()
		if len(v) < MinScrubbedLen {
			continue
		}
		for _, f := range forms(v) {
			if _, ok := s.forms[f]; !ok {
				if s.forms == nil {
					s.forms = map[string]struct{}{}
				}
				s.forms[f] = struct{}{}
				added = true
			}
		}
	}
	if !added {
		return
	}
	olds := make([]string, 0, len(s.forms))
	for f := range s.forms {
		olds = append(olds, f)
	}
	// Longest first: a form that contains another (a JSON-escaped key) wins.
	sort.Slice(olds, func(i, j int) bool {
		return len(olds[i]) > len(olds[j]) || (len(olds[i]) == len(olds[j]) && olds[i] < olds[j])
	})
	pairs := make([]string, 0, 2*len(olds))
	for _, o := range olds {
		pairs = append(pairs, o, Redacted)
	}
	s.r.Store(strings.NewReplacer(pairs...))
}

// forms are the spellings of v that text can carry.
func forms(v string) []string {
	out := []string{v}
	add := func(f string) {
		for _, o := range out {
			if o == f {
				return
			}
		}
		out = append(out, f)
	}
	add(url.QueryEscape(v))
	add(url.PathEscape(v))
	if b, err := json.Marshal(v); err == nil {
		add(string(b[1 : len(b)-1]))
	}
	return out
}

// RegisterIn registers every set Secret found in v: struct fields, map values, slice
// and array elements and pointers are walked, so a whole config registers in one call.
func (s *Scrubber) RegisterIn(v any) {
	var found []Secret
	collectSecrets(reflect.ValueOf(v), &found, 0)
	s.Register(found...)
}

var secretType = reflect.TypeFor[Secret]()

func collectSecrets(v reflect.Value, out *[]Secret, depth int) {
	if !v.IsValid() || depth > 32 {
		return
	}
	if v.Type() == secretType {
		*out = append(*out, Secret{value: v.Field(0).String()})
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collectSecrets(v.Elem(), out, depth+1)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			collectSecrets(v.Field(i), out, depth+1)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			collectSecrets(it.Value(), out, depth+1)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			collectSecrets(v.Index(i), out, depth+1)
		}
	}
}

// Active reports whether any secret is registered: when not, Scrub is the identity.
func (s *Scrubber) Active() bool { return s.r.Load() != nil }

// Scrub returns text with every registered secret replaced by Redacted; text itself
// when nothing is registered.
func (s *Scrubber) Scrub(text string) string {
	r := s.r.Load()
	if r == nil || text == "" {
		return text
	}
	return r.Replace(text)
}

// process is the process-wide scrubber: config loading registers every Secret of a
// loaded config, adapters register the keys they hold.
var process Scrubber

// RegisterSecrets adds secrets to the process-wide scrubber.
func RegisterSecrets(secrets ...Secret) { process.Register(secrets...) }

// RegisterSecretsIn adds every Secret found in v to the process-wide scrubber.
func RegisterSecretsIn(v any) { process.RegisterIn(v) }

// Scrubbing reports whether any secret is registered process-wide.
func Scrubbing() bool { return process.Active() }

// Scrub removes every secret registered process-wide from text.
func Scrub(text string) string { return process.Scrub(text) }

// credentialPatterns match credentials by their shape, for text from outside (an
// upstream's error body) that may carry one nobody registered: a bearer token, a
// key-like query parameter or JSON field, an "sk-" style key.
var credentialPatterns = regexp.MustCompile(`(?i)(bearer\s+)[^\s"',;]+` +
	`|((?:api[_-]?key|access[_-]?token|token|key|secret|password)"?\s*[=:]\s*"?)[^\s"'&,;]+` +
	`|\b(sk|pk|rk)-[A-Za-z0-9_\-]{12,}`)

// Excerpt makes text from outside the mesh (an upstream's error message or body) fit to
// pass on: secrets removed (registered ones, then anything shaped like a credential),
// control characters and runs of white space turned into one space, and at most max
// bytes kept, cut at a character boundary and marked with "…".
func Excerpt(text string, max int) string {
	text = Scrub(text)
	text = credentialPatterns.ReplaceAllStringFunc(text, func(m string) string {
		sub := credentialPatterns.FindStringSubmatch(m)
		switch {
		case sub[1] != "":
			return sub[1] + Redacted
		case sub[2] != "":
			return sub[2] + Redacted
		}
		return Redacted
	})
	var b strings.Builder
	b.Grow(min(len(text), max+4))
	space := false
	for _, r := range text {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if b.Len()+utf8.RuneLen(r) > max {
			return strings.TrimRight(b.String(), " ") + "…"
		}
		b.WriteRune(r)
	}
	return b.String()
}
