package checksum

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/xxh3"
)

// TestSumMatchesXXH3 compares Sum with xxh3.Hash for every length 0..4096, each at several
// offsets into the buffer (alignments) and with random contents.
func TestSumMatchesXXH3(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096+64)
	forEachCPU(func(cpu string) {
		for n := 0; n <= 4096; n++ {
			for _, off := range []int{0, 1, 7, 8, 31, 32, 63} {
				for i := range buf {
					buf[i] = byte(r.Uint32())
				}
				b := buf[off : off+n]
				if got, want := Sum(b), xxh3.Hash(b); got != want {
					t.Fatalf("%s: len %d offset %d: Sum = %#x, xxh3.Hash = %#x", cpu, n, off, got, want)
				}
			}
		}
	})
}

// TestSumPatterns compares Sum with xxh3.Hash on inputs whose lanes hit the arithmetic's
// edges: all zero, all ones (every product and data sum carries), and a counting pattern.
func TestSumPatterns(t *testing.T) {
	for _, fill := range []func(i int) byte{
		func(int) byte { return 0 },
		func(int) byte { return 0xff },
		func(i int) byte { return byte(i) },
		func(i int) byte { return byte(i % 251) },
	} {
		b := make([]byte, maxAsm+1)
		for i := range b {
			b[i] = fill(i)
		}
		forEachCPU(func(cpu string) {
			for n := minAsm - 1; n <= maxAsm+1; n++ {
				if got, want := Sum(b[:n]), xxh3.Hash(b[:n]); got != want {
					t.Fatalf("%s: len %d: Sum = %#x, xxh3.Hash = %#x", cpu, n, got, want)
				}
			}
		})
	}
}

// TestSumEmpty checks the published XXH3-64 of the empty input.
func TestSumEmpty(t *testing.T) {
	if got := Sum(nil); got != 0x2d06800538d394c2 {
		t.Fatalf("Sum(nil) = %#x", got)
	}
}

// checkCopySum runs CopySum on a frame with the given header and payload, the frame placed
// at offset off of a buffer with guard bytes around it, and fails unless the frame is the
// header and the payload, the sum is xxh3.Hash's, and the guard bytes are untouched. In
// place, the payload is first put at frame[HeaderSize:] and passed from there.
func checkCopySum(t *testing.T, cpu string, header [HeaderSize]byte, payload []byte, off int, inPlace bool) {
	t.Helper()
	const guard = 64
	buf := bytes.Repeat([]byte{0xa5}, off+HeaderSize+len(payload)+guard)
	frame := buf[off : off+HeaderSize+len(payload)]
	var words [4]uint64
	for i := range words {
		words[i] = binary.LittleEndian.Uint64(header[8*i:])
	}
	src := payload
	if inPlace {
		src = frame[HeaderSize:]
		copy(src, payload)
	}
	want := xxh3.Hash(append(header[:], payload...))
	if got := CopySum(frame, words, src); got != want {
		t.Fatalf("%s: payload %d bytes, offset %d, in place %v: CopySum = %#x, want %#x", cpu, len(payload), off, inPlace, got, want)
	}
	if !bytes.Equal(frame[:HeaderSize], header[:]) || !bytes.Equal(frame[HeaderSize:], payload) {
		t.Fatalf("%s: payload %d bytes, offset %d, in place %v: frame is not header+payload", cpu, len(payload), off, inPlace)
	}
	for i, c := range buf {
		if (i < off || i >= off+len(frame)) && c != 0xa5 {
			t.Fatalf("%s: payload %d bytes, offset %d, in place %v: byte %d outside the frame written", cpu, len(payload), off, inPlace, i-off)
		}
	}
}

// TestCopySumMatchesXXH3 checks CopySum for every payload length 0..4064 (frames of 32..4096
// bytes), several alignments of frame and payload, random contents, copied and in place.
func TestCopySumMatchesXXH3(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	src := make([]byte, 4096+64)
	forEachCPU(func(cpu string) {
		for n := 0; n <= 4096-HeaderSize; n++ {
			for _, off := range [][2]int{{0, 0}, {1, 3}, {8, 32}, {31, 1}, {32, 63}} {
				var header [HeaderSize]byte
				for i := range header {
					header[i] = byte(r.Uint32())
				}
				for i := range src {
					src[i] = byte(r.Uint32())
				}
				checkCopySum(t, cpu, header, src[off[1]:off[1]+n], off[0], false)
				checkCopySum(t, cpu, header, src[off[1]:off[1]+n], off[0], true)
			}
		}
	})
}

// TestCopySumBadLength checks that CopySum refuses a frame of the wrong length.
func TestCopySumBadLength(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("CopySum with len(frame) != HeaderSize+len(payload) did not panic")
		}
	}()
	CopySum(make([]byte, 300), [4]uint64{}, make([]byte, 300))
}

// FuzzChecksum: Sum and CopySum equal xxh3.Hash on any input, on every code path the CPU
// can run.
// The input is split at HeaderSize into a header and a payload for CopySum.
func FuzzChecksum(f *testing.F) {
	for _, n := range []int{0, 16, 32, 240, 241, 256, 288, 1000, 1024, 1025, 4096} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + n)
		}
		f.Add(b, uint8(0))
		f.Add(b, uint8(13))
	}
	f.Fuzz(func(t *testing.T, b []byte, off uint8) {
		forEachCPU(func(cpu string) {
			if got, want := Sum(b), xxh3.Hash(b); got != want {
				t.Fatalf("%s: len %d: Sum = %#x, xxh3.Hash = %#x", cpu, len(b), got, want)
			}
			if len(b) >= HeaderSize {
				checkCopySum(t, cpu, [HeaderSize]byte(b), b[HeaderSize:], int(off%64), off&1 != 0)
			}
		})
	})
}

var benchSizes = []int{64, 240, 288, 512, 1024, 16 << 10}

// BenchmarkSum compares Sum, on each code path the CPU can run, with xxh3.Hash at the same
// sizes, in the same run: 288 bytes is the checksummed part of a frame with a 256-byte
// payload.
func BenchmarkSum(b *testing.B) {
	for _, n := range benchSizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i % 251)
		}
		b.Run(fmt.Sprintf("xxh3/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				xxh3.Hash(data)
			}
		})
		forEachCPU(func(cpu string) {
			b.Run(fmt.Sprintf("Sum-%s/%d", cpu, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					Sum(data)
				}
			})
		})
	}
}

// BenchmarkCopySum compares CopySum, on each code path the CPU can run, with its two-pass
// equivalent (write the header and copy the payload, then xxh3.Hash) for a frame with a
// 256-byte payload.
func BenchmarkCopySum(b *testing.B) {
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(i % 251)
	}
	frame := make([]byte, HeaderSize+len(payload))
	header := [4]uint64{1, 2, 3, 4}
	b.Run("copy+xxh3", func(b *testing.B) {
		for b.Loop() {
			for i, w := range header {
				binary.LittleEndian.PutUint64(frame[8*i:], w)
			}
			copy(frame[HeaderSize:], payload)
			xxh3.Hash(frame)
		}
	})
	forEachCPU(func(cpu string) {
		b.Run("CopySum-"+cpu, func(b *testing.B) {
			for b.Loop() {
				CopySum(frame, header, payload)
			}
		})
	})
}
