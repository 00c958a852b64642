//go:build amd64 && !purego

package checksum

import "golang.org/x/sys/cpu"

// useAsm is true when the CPU can run the assembly (AVX2).
var useAsm = cpu.X86.HasAVX2

// sumAsm is Sum for minAsm <= len(b) <= maxAsm with useAsm.
func sumAsm(b []byte) uint64 { return sumAVX2(b) }

// copySumAsm is CopySum for minAsm <= len(frame) <= maxAsm with useAsm.
func copySumAsm(frame []byte, header *[4]uint64, payload []byte) uint64 {
	return copySumAVX2(frame, header[0], header[1], header[2], header[3], payload)
}

// sumAVX2 returns the XXH3-64 (seed 0) of b, minAsm <= len(b) <= maxAsm.
//
//go:noescape
func sumAVX2(b []byte) uint64

// copySumAVX2 is CopySum with the header words h0..h3, for minAsm <= len(frame) <= maxAsm
// and len(frame) == HeaderSize+len(payload).
//
//go:noescape
func copySumAVX2(frame []byte, h0, h1, h2, h3 uint64, payload []byte) uint64
