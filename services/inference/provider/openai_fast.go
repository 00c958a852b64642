package provider

import (
	"bytes"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// A fast decoder for the common shape of chat.completion.chunk events, which a gateway
// decodes once per token. It fills the same oaChunk json.Unmarshal would and gives up
// (returns false) on anything it does not handle exactly like encoding/json: non-UTF-8
// strings, escaped keys, tool calls, error objects, non-integer numbers, non-ASCII or
// differently-cased keys, duplicate keys, deep nesting and invalid JSON. The caller then
// runs json.Unmarshal. FuzzOpenAIFastDecode checks the two agree on every input the fast
// path accepts.

type fastScanner struct {
	b []byte
	i int
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *fastScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *fastScanner) eat(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid UTF-8 (keys).
func (s *fastScanner) str() ([]byte, bool) { return s.strValue(false) }

// strValue reads a string; with unescape, JSON escapes are decoded as encoding/json does
// (a bad surrogate pair becomes U+FFFD).
func (s *fastScanner) strValue(unescape bool) ([]byte, bool) {
	if !s.eat('"') {
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
func (s *fastScanner) escape(out []byte) ([]byte, bool) {
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

func (s *fastScanner) hex4() (rune, bool) {
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

func (s *fastScanner) literal(lit string) bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// number validates a JSON number and returns its text.
func (s *fastScanner) number() ([]byte, bool) {
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

// integer reads a number that must be an integer fitting int (as json does for int).
func (s *fastScanner) integer() (int, bool) {
	t, ok := s.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(t), 10, strconv.IntSize)
	return int(n), err == nil
}

// skip validates and skips any value.
func (s *fastScanner) skip(depth int) bool {
	if depth > 64 {
		return false
	}
	switch s.peek() {
	case '"':
		_, ok := s.strValue(true)
		return ok
	case '{':
		return s.object(func(_ []byte) bool { return s.skip(depth + 1) })
	case '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	_, ok := s.number()
	return ok
}

// object calls field for each key, positioned at its value.
func (s *fastScanner) object(field func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.eat(':') || !field(key) {
			return false
		}
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

func (s *fastScanner) array(elem func() bool) bool {
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.eat(']') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// key matches key against the names an object's struct has. It returns the index of the
// exact match, -1 for a key json would ignore, and ok=false when json would match it some
// other way (case-folded, non-ASCII) or it repeats.
func fastKey(key []byte, names []string, seen *uint8) (int, bool) {
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

// strOrNull reads a string or null into *dst (null leaves it as is, as json does).
func (s *fastScanner) strOrNull(dst *string) bool {
	if s.peek() == 'n' {
		return s.literal("null")
	}
	v, ok := s.strValue(true)
	if ok {
		*dst = string(v)
	}
	return ok
}

var (
	fastTopKeys    = []string{"choices", "usage", "error"}
	fastChoiceKeys = []string{"index", "delta", "finish_reason"}
	fastDeltaKeys  = []string{"content", "refusal", "tool_calls"}
	fastUsageKeys  = []string{"prompt_tokens", "completion_tokens"}
)

// decodeOpenAIChunkFast fills c (which must be zero, Choices may have capacity) from data.
func decodeOpenAIChunkFast(data []byte, c *oaChunk) bool {
	s := &fastScanner{b: data}
	var seenTop uint8
	ok := s.object(func(key []byte) bool {
		k, ok := fastKey(key, fastTopKeys, &seenTop)
		if !ok {
			return false
		}
		switch k {
		case 0: // choices
			if s.peek() == 'n' {
				c.Choices = nil
				return s.literal("null")
			}
			return s.array(func() bool {
				c.Choices = append(c.Choices, oaChoice{})
				ch := &c.Choices[len(c.Choices)-1]
				if s.peek() == 'n' {
					return s.literal("null")
				}
				var seen uint8
				return s.object(func(key []byte) bool {
					k, ok := fastKey(key, fastChoiceKeys, &seen)
					if !ok {
						return false
					}
					switch k {
					case 0:
						if s.peek() == 'n' {
							return s.literal("null")
						}
						ch.Index, ok = s.integer()
						return ok
					case 1:
						if s.peek() == 'n' {
							return s.literal("null")
						}
						var seenD uint8
						return s.object(func(key []byte) bool {
							k, ok := fastKey(key, fastDeltaKeys, &seenD)
							switch {
							case !ok || k == 2: // tool calls: the general decoder
								return false
							case k == 0:
								return s.strOrNull(&ch.Delta.Content)
							case k == 1:
								return s.strOrNull(&ch.Delta.Refusal)
							}
							return s.skip(1)
						})
					case 2:
						return s.strOrNull(&ch.FinishReason)
					}
					return s.skip(1)
				})
			})
		case 1: // usage
			if s.peek() == 'n' {
				return s.literal("null")
			}
			c.Usage = &struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			}{}
			var seen uint8
			return s.object(func(key []byte) bool {
				k, ok := fastKey(key, fastUsageKeys, &seen)
				if !ok {
					return false
				}
				switch k {
				case 0, 1:
					if s.peek() == 'n' {
						return s.literal("null")
					}
					n, ok := s.integer()
					if k == 0 {
						c.Usage.PromptTokens = n
					} else {
						c.Usage.CompletionTokens = n
					}
					return ok
				}
				return s.skip(1)
			})
		case 2: // error: only null is handled here
			return s.peek() == 'n' && s.literal("null")
		}
		return s.skip(1)
	})
	s.ws()
	return ok && s.i == len(s.b)
}
