// Package jsonscan is a small JSON scanner for the inference service's fast decoding
// paths: the request body of /v1/chat/completions and the chat.completion.chunk events
// of a stream, both decoded once per call or token. Callers fill their structs by hand
// and give up (a method returns false) on anything they do not handle exactly as
// encoding/json does; they then run json.Unmarshal, which also reports the error. The
// rules that keep the two in agreement: keys match exactly or not at all (Key refuses
// case-folded matches and repeats), strings are valid UTF-8 with escapes decoded as
// json decodes them, numbers are parsed from the same text with strconv, and a value
// of an unexpected type is a refusal, never a guess. Fuzz tests next to each caller
// compare the two decoders on every input the fast path accepts.
package jsonscan

import (
	"bytes"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Scanner reads one JSON text.
type Scanner struct {
	b []byte
	i int
}

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Peek returns the next non-space byte (0 at the end).
func (s *Scanner) Peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// Eat consumes c when it is the next non-space byte.
func (s *Scanner) Eat(c byte) bool {
	if s.Peek() == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid UTF-8 (keys).
func (s *Scanner) str() ([]byte, bool) { return s.strValue(false) }

// strValue reads a string; with unescape, JSON escapes are decoded as encoding/json does
// (a bad surrogate pair becomes U+FFFD).
func (s *Scanner) strValue(unescape bool) ([]byte, bool) {
	if !s.Eat('"') {
		return nil, false
	}
	start := s.i
	ascii := true
	var out []byte // the decoded value once an escape was seen
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			if out != nil {
				return append(out, v...), true
			}
			return v, true
		case c == '\\':
			if !unescape {
				return nil, false
			}
			if !ascii && !utf8.Valid(s.b[start:s.i]) {
				return nil, false
			}
			out = append(out, s.b[start:s.i]...)
			var ok bool
			if out, ok = s.escape(out); !ok {
				return nil, false
			}
			start, ascii = s.i, true
			continue
		case c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
		s.i++
	}
	return nil, false
}

// escape decodes the escape at s.i (a backslash) onto out.
func (s *Scanner) escape(out []byte) ([]byte, bool) {
	if s.i+1 >= len(s.b) {
		return nil, false
	}
	c := s.b[s.i+1]
	s.i += 2
	switch c {
	case '"', '\\', '/':
		return append(out, c), true
	case 'b':
		return append(out, '\b'), true
	case 'f':
		return append(out, '\f'), true
	case 'n':
		return append(out, '\n'), true
	case 'r':
		return append(out, '\r'), true
	case 't':
		return append(out, '\t'), true
	case 'u':
		r, ok := s.hex4()
		if !ok {
			return nil, false
		}
		if utf16.IsSurrogate(r) {
			// A pair needs a second \uXXXX; otherwise (or when it does not pair) the
			// replacement character, and the next escape is read on its own.
			if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				save := s.i
				s.i += 2
				r2, ok := s.hex4()
				if !ok {
					return nil, false
				}
				if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
					return utf8.AppendRune(out, dec), true
				}
				s.i = save
			}
			r = unicode.ReplacementChar
		}
		return utf8.AppendRune(out, r), true
	}
	return nil, false
}

func (s *Scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}

// Literal consumes lit (true, false or null) when it comes next.
func (s *Scanner) Literal(lit string) bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// Number validates a JSON number and returns its text.
func (s *Scanner) Number() ([]byte, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return nil, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// Integer reads a number that must be an integer fitting int (as json does for int).
func (s *Scanner) Integer() (int, bool) {
	t, ok := s.Number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(t), 10, strconv.IntSize)
	return int(n), err == nil
}

// Skip validates and skips any value.
func (s *Scanner) Skip(depth int) bool {
	if depth > 64 {
		return false
	}
	switch s.Peek() {
	case '"':
		_, ok := s.strValue(true)
		return ok
	case '{':
		return s.Object(func(_ []byte) bool { return s.Skip(depth + 1) })
	case '[':
		return s.Array(func() bool { return s.Skip(depth + 1) })
	case 't':
		return s.Literal("true")
	case 'f':
		return s.Literal("false")
	case 'n':
		return s.Literal("null")
	}
	_, ok := s.Number()
	return ok
}

// Object calls field for each key, positioned at its value.
func (s *Scanner) Object(field func(key []byte) bool) bool {
	if !s.Eat('{') {
		return false
	}
	if s.Eat('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.Eat(':') || !field(key) {
			return false
		}
		if s.Eat('}') {
			return true
		}
		if !s.Eat(',') {
			return false
		}
	}
}

// Array calls elem for each element, positioned at it.
func (s *Scanner) Array(elem func() bool) bool {
	if !s.Eat('[') {
		return false
	}
	if s.Eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.Eat(']') {
			return true
		}
		if !s.Eat(',') {
			return false
		}
	}
}

// Key matches key against the names an object's struct has. It returns the index of the
// exact match, -1 for a key json would ignore, and ok=false when json would match it some
// other way (case-folded, non-ASCII) or it repeats. seen records the names met so far in
// one object (at most 64 names).
func Key(key []byte, names []string, seen *uint64) (int, bool) {
	for _, c := range key {
		if c >= 0x80 {
			return 0, false
		}
	}
	for i, n := range names {
		if string(key) == n {
			if *seen&(1<<i) != 0 {
				return 0, false
			}
			*seen |= 1 << i
			return i, true
		}
		if bytes.EqualFold(key, []byte(n)) {
			return 0, false
		}
	}
	return -1, true
}

// Fields reads an object whose keys are matched against names (see Key): the value of
// a key json would ignore is skipped (Skip at depth), a key json would match some other
// way refuses, and field is called with the index of each name met, positioned at its
// value.
func (s *Scanner) Fields(names []string, depth int, field func(k int) bool) bool {
	var seen uint64
	return s.Object(func(key []byte) bool {
		k, ok := Key(key, names, &seen)
		switch {
		case !ok:
			return false
		case k < 0:
			return s.Skip(depth)
		}
		return field(k)
	})
}

// StrOrNull reads a string or null into *dst (null leaves it as is, as json does).
func (s *Scanner) StrOrNull(dst *string) bool {
	if s.Peek() == 'n' {
		return s.Literal("null")
	}
	v, ok := s.strValue(true)
	if ok {
		*dst = string(v)
	}
	return ok
}

// IntOrNull reads an integer (see Integer) or null into *dst (null leaves it as is, as
// json does).
func (s *Scanner) IntOrNull(dst *int) bool {
	if s.Peek() == 'n' {
		return s.Literal("null")
	}
	n, ok := s.Integer()
	if ok {
		*dst = n
	}
	return ok
}

// New returns a Scanner at the start of b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// End reports whether only white space is left (json rejects anything else after the
// value).
func (s *Scanner) End() bool {
	s.ws()
	return s.i == len(s.b)
}

// Raw validates any value (see Skip) and returns its text as it stands, as json does for
// a json.RawMessage. The bytes alias the input.
func (s *Scanner) Raw(depth int) ([]byte, bool) {
	s.ws()
	start := s.i
	ok := s.Skip(depth)
	return s.b[start:s.i], ok
}

// String reads a string value, decoding escapes.
func (s *Scanner) String() ([]byte, bool) { return s.strValue(true) }

// Float reads a number as json does for float64 (the same strconv call on the same
// text); a number out of range is a refusal.
func (s *Scanner) Float() (float64, bool) {
	t, ok := s.Number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(t), 64)
	return f, err == nil
}

// Bool reads true or false.
func (s *Scanner) Bool() (v, ok bool) {
	switch s.Peek() {
	case 't':
		return true, s.Literal("true")
	case 'f':
		return false, s.Literal("false")
	}
	return false, false
}
