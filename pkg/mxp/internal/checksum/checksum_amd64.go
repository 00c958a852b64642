//go:build amd64 && !purego

package checksum

import "golang.org/x/sys/cpu"

// useAVX2 tells the assembly whether the CPU has AVX2; without, it jumps to the generic
// code.
var useAVX2 = cpu.X86.HasAVX2

// Sum returns the XXH3-64 (seed 0) of b.
//
// It is assembly: one routine for minAsm <= len(b) <= maxAsm on a CPU with AVX2, a jump to
// sumGeneric otherwise.
//
//go:noescape
func Sum(b []byte) uint64

// CopySum writes a frame: the header, given as its four little-endian 8-byte words, to
// frame[:HeaderSize] and payload to frame[HeaderSize:], and returns Sum(frame). frame must
// be HeaderSize+len(payload) bytes long (CopySum panics otherwise). payload may be
// frame[HeaderSize:] itself; any other overlap of the two gives an unspecified frame and
// sum.
//
// It does in one pass what an encoder otherwise does in two (write the frame, then hash
// it): each payload byte is loaded once, and no load waits for a store of the frame to
// reach the cache (a load that spans several recent stores does, for tens of cycles).
//
// It is assembly: one routine for minAsm <= len(frame) <= maxAsm on a CPU with AVX2, a jump
// to copySumGeneric otherwise.
//
//go:noescape
func CopySum(frame []byte, header [4]uint64, payload []byte) uint64
