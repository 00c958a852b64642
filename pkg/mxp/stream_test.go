package mxp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReaderWriterRoundTrip(t *testing.T) {
	frames := []Frame{
		{Type: TypeAgentRegister, MessageID: 1, Payload: []byte(`{"id":"x"}`)},
		{Type: TypeCall, Flags: FlagRequiresAck, MessageID: 2, TraceID: 7, Payload: bytes.Repeat([]byte{0xab}, 100_000)},
		{Type: TypeAck, MessageID: 3},
		{Type: TypeStreamClose, Flags: FlagFinal, MessageID: 4, Payload: make([]byte, 16)},
	}
	var stream bytes.Buffer
	w := NewWriter(&stream)
	for i := range frames {
		if err := w.WriteFrame(&frames[i]); err != nil {
			t.Fatal(err)
		}
	}
	// One byte at a time exercises every partial read.
	for _, src := range []struct {
		name string
		r    io.Reader
	}{
		{"buffer", bytes.NewReader(stream.Bytes())},
		{"one byte reads", iotest.OneByteReader(bytes.NewReader(stream.Bytes()))},
		{"data with EOF", iotest.DataErrReader(bytes.NewReader(stream.Bytes()))},
	} {
		t.Run(src.name, func(t *testing.T) {
			r := NewReader(src.r)
			for i, want := range frames {
				got, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if got.Type != want.Type || got.Flags != want.Flags || got.MessageID != want.MessageID ||
					got.TraceID != want.TraceID || !bytes.Equal(got.Payload, want.Payload) {
					t.Fatalf("frame %d differs", i)
				}
			}
			for range 2 {
				if _, err := r.ReadFrame(); err != io.EOF {
					t.Fatalf("after the last frame: %v, want io.EOF", err)
				}
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	good, _ := AppendFrame(nil, &Frame{Type: TypeEvent, Payload: []byte("payload")})
	badSum := bytes.Clone(good)
	badSum[len(badSum)-1] ^= 0xff
	huge := bytes.Clone(good)
	huge[29] = 0x7f // declared length far over 16 MiB
	tests := []struct {
		name   string
		stream []byte
		kind   string // ErrorKind, or "" for a truncation
	}{
		{"truncated header", good[:20], ""},
		{"truncated payload", good[:len(good)-3], ""},
		{"bad magic", append([]byte("GET / HTTP/1.1\r\n"), make([]byte, 40)...), "InvalidMagic"},
		{"checksum", badSum, "ChecksumMismatch"},
		{"length over the limit", huge, "PayloadTooLarge"},
		{"good then garbage", append(bytes.Clone(good), strings.Repeat("x", 50)...), "InvalidMagic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.stream))
			var err error
			for range 3 {
				if _, err = r.ReadFrame(); err != nil {
					break
				}
			}
			if tt.kind == "" {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
				}
			} else if ErrorKind(err) != tt.kind {
				t.Fatalf("err = %v (kind %q), want kind %s", err, ErrorKind(err), tt.kind)
			}
			// No resynchronisation: the error sticks.
			if _, again := r.ReadFrame(); again != err {
				t.Fatalf("second ReadFrame = %v, want the same error %v", again, err)
			}
		})
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriterErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := NewWriter(&buf).WriteFrame(&Frame{Type: 0x77}); !errors.Is(err, ErrInvalidMessageType) || buf.Len() != 0 {
		t.Fatalf("invalid frame: err=%v, %d bytes written", err, buf.Len())
	}
	boom := errors.New("disk full")
	if err := NewWriter(failWriter{boom}).WriteFrame(&Frame{Type: TypeCall}); !errors.Is(err, boom) {
		t.Fatalf("write error lost: %v", err)
	}
}
