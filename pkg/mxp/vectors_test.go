package mxp

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

const vectorsFile = "testdata/codec-v0.2.0.txt"

// vector is one entry of the reference vectors file: a VALID or CASE line with its HEX and
// DECODE lines.
type vector struct {
	line   int               // line number of the VALID/CASE line
	valid  bool              // VALID (an encoder test too) or CASE (decode only)
	name   string            // the entry's name
	attrs  map[string]string // key=value attributes of the VALID/CASE line
	wire   []byte            // HEX
	decode string            // DECODE, without the keyword
}

// loadVectors parses every entry of the vectors file and fails on a line it does not
// understand, so an entry can never be skipped silently.
func loadVectors(t testing.TB) []vector {
	t.Helper()
	file, err := os.Open(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out []vector
	var cur *vector
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "", strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "VALID "), strings.HasPrefix(line, "CASE "):
			if cur != nil {
				t.Fatalf("line %d: entry %q has no DECODE line", cur.line, cur.name)
			}
			kw, rest, _ := strings.Cut(line, " ")
			name, rest, _ := strings.Cut(rest, " ")
			v := &vector{line: lineNo, valid: kw == "VALID", name: name, attrs: map[string]string{}}
			for _, field := range strings.Fields(rest) {
				if k, val, ok := strings.Cut(field, "="); ok {
					v.attrs[k] = val
				}
			}
			cur = v
		case line == "HEX" || strings.HasPrefix(line, "HEX "):
			if cur == nil {
				t.Fatalf("line %d: HEX outside an entry", lineNo)
			}
			b, err := hex.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "HEX")))
			if err != nil {
				t.Fatalf("line %d: %v", lineNo, err)
			}
			cur.wire = b
		case strings.HasPrefix(line, "DECODE "):
			if cur == nil || cur.wire == nil {
				t.Fatalf("line %d: DECODE without an entry and its HEX", lineNo)
			}
			cur.decode = strings.TrimPrefix(line, "DECODE ")
			out = append(out, *cur)
			cur = nil
		default:
			t.Fatalf("line %d: unrecognised line %.40q", lineNo, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("line %d: entry %q has no DECODE line", cur.line, cur.name)
	}
	return out
}

func (v vector) uint(t *testing.T, key string) uint64 {
	t.Helper()
	s, ok := v.attrs[key]
	if !ok {
		t.Fatalf("%s: attribute %s missing", v.name, key)
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("%s: attribute %s: %v", v.name, key, err)
	}
	return n
}

// payload rebuilds a VALID entry's payload from payload=P(n) or payload=hex:...
func (v vector) payload(t *testing.T) []byte {
	t.Helper()
	spec := v.attrs["payload"]
	if h, ok := strings.CutPrefix(spec, "hex:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		return b
	}
	var n int
	if _, err := fmt.Sscanf(spec, "P(%d)", &n); err != nil {
		t.Fatalf("%s: payload %q: %v", v.name, spec, err)
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

// formatDecode renders a Decode result the way the DECODE lines of the vectors file do
// ("ok type=0x10 ... payload=42" / "err Kind { fields } :: message"), from the typed
// errors' fields, so that a match checks kind, fields and message at once.
func formatDecode(f Frame, err error) string {
	if err == nil {
		p := f.Payload
		suffix := ""
		if len(p) > 32 {
			p, suffix = p[:32], "..."
		}
		return fmt.Sprintf("ok type=0x%02x flags=0x%02x msg_id=0x%016x trace_id=0x%016x payload_len=%d payload=%x%s",
			uint8(f.Type), uint8(f.Flags), f.MessageID, f.TraceID, len(f.Payload), p, suffix)
	}
	var fields string
	var (
		bts BufferTooSmallError
		im  InvalidMagicError
		rf  ReservedFieldNonZeroError
		it  InvalidMessageTypeError
		ifl InvalidFlagsError
		ptl PayloadTooLargeError
		cm  ChecksumMismatchError
	)
	switch {
	case errors.As(err, &bts):
		fields = fmt.Sprintf("needed: %d, got: %d", bts.Needed, bts.Got)
	case errors.As(err, &im):
		fields = fmt.Sprintf("found: %d", im.Found)
	case errors.As(err, &rf):
		fields = fmt.Sprintf("field: %q, value: %d", rf.Field, rf.Value)
	case errors.As(err, &it):
		fields = fmt.Sprintf("type_byte: %d", it.TypeByte)
	case errors.As(err, &ifl):
		fields = fmt.Sprintf("flags: %d", ifl.Flags)
	case errors.As(err, &ptl):
		fields = fmt.Sprintf("size: %d, max: %d", ptl.Size, ptl.Max)
	case errors.As(err, &cm):
		fields = fmt.Sprintf("expected: %d, found: %d", cm.Expected, cm.Found)
	default:
		return "err (untyped) " + err.Error()
	}
	return fmt.Sprintf("err %s { %s } :: %s", ErrorKind(err), fields, err.Error())
}

func TestVectorsDecode(t *testing.T) {
	vectors := loadVectors(t)
	if len(vectors) < 30 {
		t.Fatalf("only %d entries parsed from %s", len(vectors), vectorsFile)
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			in := v.wire[:len(v.wire):len(v.wire)]
			f, n, err := Decode(in)
			if got := formatDecode(f, err); got != v.decode {
				t.Fatalf("Decode:\n got  %s\n want %s", got, v.decode)
			}
			if err != nil {
				if n != 0 {
					t.Errorf("n = %d on error, want 0", n)
				}
				kind := strings.Fields(v.decode)[1]
				if !errors.Is(err, kindByName(t, kind)) {
					t.Errorf("errors.Is(err, Err%s) = false", kind)
				}
				return
			}
			if want := HeaderSize + len(f.Payload) + ChecksumSize; n != want {
				t.Errorf("n = %d, want %d", n, want)
			}
			if len(f.Payload) > 0 && &f.Payload[0] != &in[HeaderSize] {
				t.Error("payload is a copy, want a view of the input")
			}
		})
	}
}

func TestVectorsEncode(t *testing.T) {
	count := 0
	for _, v := range loadVectors(t) {
		if !v.valid {
			continue
		}
		count++
		t.Run(v.name, func(t *testing.T) {
			f := Frame{
				Type:      MessageType(v.uint(t, "type")),
				Flags:     Flags(v.uint(t, "flags")),
				MessageID: v.uint(t, "msg_id"),
				TraceID:   v.uint(t, "trace_id"),
				Payload:   v.payload(t),
			}
			if want := int(v.uint(t, "payload_len")); len(f.Payload) != want {
				t.Fatalf("payload length %d, want %d", len(f.Payload), want)
			}
			if want := int(v.uint(t, "total_len")); f.EncodedLen() != want {
				t.Errorf("EncodedLen = %d, want %d", f.EncodedLen(), want)
			}
			prefix := []byte("prefix")
			got, err := AppendFrame(prefix, &f)
			if err != nil {
				t.Fatal(err)
			}
			if string(got[:len(prefix)]) != "prefix" {
				t.Fatal("AppendFrame overwrote dst")
			}
			if string(got[len(prefix):]) != string(v.wire) {
				t.Fatalf("AppendFrame:\n got  %x\n want %x", got[len(prefix):], v.wire)
			}
			sum := v.uint(t, "checksum_u64")
			if got := le64(v.wire[len(v.wire)-ChecksumSize:]); got != sum {
				t.Errorf("stored checksum %#x, vectors say %#x", got, sum)
			}
		})
	}
	if count < 15 {
		t.Fatalf("only %d VALID entries", count)
	}
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func kindByName(t *testing.T, name string) Kind {
	t.Helper()
	for k := ErrBufferTooSmall; k <= ErrChecksumMismatch; k++ {
		if k.String() == name {
			return k
		}
	}
	t.Fatalf("unknown kind %q", name)
	return 0
}
