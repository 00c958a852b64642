//go:build amd64 && !purego

package checksum

import "golang.org/x/sys/cpu"

// useAsm is true when the CPU can run sumAVX2 and copySumAVX2.
var useAsm = cpu.X86.HasAVX2

// sumAsm is Sum for minAsm <= len(b) <= maxAsm on a CPU with AVX2.
func sumAsm(b []byte) uint64 { return sumAVX2(b) }

// copySumAsm is CopySum for minAsm <= len(frame) <= maxAsm on a CPU with AVX2.
func copySumAsm(frame []byte, header *[4]uint64, payload []byte) uint64 {
	return copySumAVX2(frame, header[0], header[1], header[2], header[3], payload)
}

// sumAVX2 returns the XXH3-64 (seed 0) of b, minAsm <= len(b) <= maxAsm. It requires AVX2.
//
//go:noescape
func sumAVX2(b []byte) uint64

// copySumAVX2 is CopySum for minAsm <= len(frame) <= maxAsm, len(frame) = HeaderSize +
// len(payload), with the header words h0..h3. It requires AVX2.
//
//go:noescape
func copySumAVX2(frame []byte, h0, h1, h2, h3 uint64, payload []byte) uint64
