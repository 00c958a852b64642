package mxp

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp/internal/checksum"
	"github.com/zeebo/xxh3"
)

// benchFrame returns a Call with a payload of n bytes of the vectors' pattern.
func benchFrame(n int) Frame {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return Frame{Type: TypeCall, Flags: FlagRequiresAck, MessageID: 0x0123456789abcdef, TraceID: 0xfedcba9876543210, Payload: p}
}

var benchSizes = []int{256, 16 << 10, 1 << 20}

func benchName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkEncode measures AppendFrame of a Call into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(benchName(n), func(b *testing.B) {
			f := benchFrame(n)
			buf := make([]byte, 0, f.EncodedLen())
			b.SetBytes(int64(f.EncodedLen()))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = AppendFrame(buf[:0], &f)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures Decode of an encoded Call, checksum included.
func BenchmarkDecode(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(benchName(n), func(b *testing.B) {
			f := benchFrame(n)
			wire, err := AppendFrame(nil, &f)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				g, used, err := Decode(wire)
				if err != nil || used != len(wire) || len(g.Payload) != n {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChecksum measures the codec's XXH3-64 (checksum.Sum) alone over the bytes a
// frame's checksum covers (header and payload): the floor under Encode and Decode, which
// compute it once each.
func BenchmarkChecksum(b *testing.B) { benchHash(b, checksum.Sum) }

// BenchmarkChecksumXXH3 is BenchmarkChecksum with github.com/zeebo/xxh3's Hash, the
// reference checksum.Sum must equal and beat, measured in the same run.
func BenchmarkChecksumXXH3(b *testing.B) { benchHash(b, xxh3.Hash) }

// benchHash measures hash over the bytes a frame's checksum covers, for each bench size.
func benchHash(b *testing.B, hash func([]byte) uint64) {
	for _, n := range benchSizes {
		b.Run(benchName(n), func(b *testing.B) {
			data := make([]byte, HeaderSize+n)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				hash(data)
			}
		})
	}
}

// BenchmarkCallPayload measures the Call payload layer on top of the frame: encoding a
// Call with 256 bytes of data into a reused buffer, and decoding it (zero-copy).
func BenchmarkCallPayload(b *testing.B) {
	p := CallPayload{Target: ServiceInference, TimeoutSeconds: 30, Data: benchFrame(256).Payload}
	buf, err := p.AppendPayload(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = p.AppendPayload(buf[:0])
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeCall(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeError measures the error path. "inspect" handles the error the way a
// server does before counting it in a metric: it looks at the kind and drops the error, so
// the error stays on the stack (0 allocs). "keep" stores the error where it outlives the
// call, as returning it up the stack would: the 24-byte FrameError then moves to the heap.
//
// The loops are plain b.N loops: b.Loop keeps every result alive, which by itself moves
// an interface result to the heap and would measure "keep" twice.
func BenchmarkDecodeError(b *testing.B) {
	f := benchFrame(256)
	good, err := AppendFrame(nil, &f)
	if err != nil {
		b.Fatal(err)
	}
	corrupt := func(i int, v byte) []byte {
		c := append([]byte(nil), good...)
		c[i] ^= v
		return c
	}
	cases := []struct {
		name string
		in   []byte
		kind Kind
	}{
		{"BufferTooSmall", good[:39], ErrBufferTooSmall},
		{"InvalidMagic", corrupt(0, 0xff), ErrInvalidMagic},
		{"PayloadTooLarge", corrupt(27, 0x10), ErrPayloadTooLarge},
		{"ChecksumMismatch", corrupt(len(good)-1, 0x01), ErrChecksumMismatch},
	}
	for _, c := range cases {
		b.Run(c.name+"/inspect", func(b *testing.B) {
			b.ReportAllocs()
			bad := 0
			for i := 0; i < b.N; i++ {
				if _, _, err := Decode(c.in); err == nil || err.(FrameError).Kind() != c.kind {
					bad++
				}
			}
			if bad != 0 {
				b.Fatalf("%d decodes without the %s error", bad, c.kind)
			}
		})
		b.Run(c.name+"/keep", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, _, errSink = Decode(c.in)
			}
			if !errors.Is(errSink, c.kind) {
				b.Fatalf("got %v, want %s", errSink, c.kind)
			}
		})
	}
}

var errSink error
