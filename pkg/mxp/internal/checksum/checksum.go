// Package checksum computes the MXP frame checksum: XXH3-64 with seed 0 and the default
// secret (docs/protocol.md, "Frame"), bit for bit the value of github.com/zeebo/xxh3's Hash.
//
// Sum is xxh3.Hash with one faster path: on amd64 with AVX2, inputs of 241 to 1024 bytes
// (frames with 209 to 992 bytes of payload, the common size of a Call) are hashed by one
// assembly routine that keeps the whole computation in registers, where xxh3.Hash passes
// its accumulators through memory to and from its assembly and merges them in Go. CopySum
// is the encoder's variant: it writes the frame (header words and payload) and hashes it in
// the same pass. Every other length, CPU or build (purego, other architectures) uses
// xxh3.Hash.
//
// There is no AVX-512 path: on CPUs that run it as two 256-bit halves (AMD Zen 4) it is
// no faster than AVX2 at the sizes this path serves.
//
// # The 241..1024-byte case (XXH3 spec, "Long inputs", one partial block)
//
// With the default 192-byte secret a block is 16 stripes of 64 bytes (1024 bytes), so an
// input of 241..1024 bytes has no complete block that is followed by more input and the
// scramble step never runs. The spec's steps reduce to:
//
//  1. Initialise the eight 64-bit accumulators:
//     acc = {P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1}.
//  2. Accumulate stripes s = 0 .. (len-1)/64 - 1, stripe s being input[64s : 64s+64] and its
//     secret secret[8s : 8s+64]; then the last stripe, input[len-64 : len] with secret
//     secret[121 : 185] (secretSize - 64 - 7). Accumulating a stripe, for lanes i = 0..7:
//     d = data[i]; k = d ^ secret[i]
//     acc[i^1] += d
//     acc[i]   += uint64(uint32(k)) * (k >> 32)
//  3. Merge: h = len*P64_1 + sum over j = 0..3 of
//     fold(acc[2j] ^ secret64[11+16j], acc[2j+1] ^ secret64[19+16j]),
//     where fold(a, b) is the xor of the high and low halves of the 128-bit product a*b.
//  4. Avalanche: h ^= h >> 37; h *= 0x165667919e3779f9; h ^= h >> 32.
//
// The assembly uses that step 2 is a sum: the data terms of all stripes are added up first
// and swapped into place (acc[i^1]) once at the end, and the products are summed in a
// second set of registers, so each stripe is two independent adds per half instead of a
// chain of two.
package checksum

import (
	"encoding/binary"

	"github.com/zeebo/xxh3"
)

// HeaderSize is the length of the header CopySum writes at the start of a frame.
const HeaderSize = 32

// The inputs the assembly handles: long inputs (more than 240 bytes) of at most one block
// (1024 bytes), which never reach the scramble step.
const (
	minAsm = 241
	maxAsm = 1024
)

// Sum returns the XXH3-64 (seed 0) of b.
func Sum(b []byte) uint64 {
	if Fast(len(b)) {
		raceReadRange(b) // the race detector does not see the assembly's accesses
		return sumAsm(b)
	}
	return xxh3.Hash(b)
}

// Fast reports whether Sum and CopySum run the assembly for n bytes. Sum is xxh3.Hash for
// every other n, so a caller that hashes many small inputs can call xxh3.Hash itself for
// those and save the call frame of Sum.
func Fast(n int) bool { return useAsm && uint(n-minAsm) <= maxAsm-minAsm }

// CopySum writes a frame: the header, given as its four little-endian 8-byte words, to
// frame[:HeaderSize] and payload to frame[HeaderSize:], and returns Sum(frame). frame must
// be HeaderSize+len(payload) bytes long (CopySum panics otherwise). payload may be
// frame[HeaderSize:] itself; any other overlap of the two gives an unspecified frame and
// sum.
//
// It does in one pass what an encoder otherwise does in two (write the frame, then hash
// it): each payload byte is loaded once, and no load waits for a store of the frame to
// reach the cache (a load that spans several recent stores does, for tens of cycles).
func CopySum(frame []byte, header [4]uint64, payload []byte) uint64 {
	if len(frame) != HeaderSize+len(payload) {
		panic("checksum: CopySum: len(frame) != HeaderSize+len(payload)")
	}
	if Fast(len(frame)) {
		raceReadRange(payload) // the race detector does not see the assembly's accesses
		raceWriteRange(frame)
		return copySumAsm(frame, &header, payload)
	}
	// Word by word: ranging over header would copy it with 16-byte loads, which wait for
	// the caller's 8-byte stores of it to reach the cache.
	binary.LittleEndian.PutUint64(frame[0:], header[0])
	binary.LittleEndian.PutUint64(frame[8:], header[1])
	binary.LittleEndian.PutUint64(frame[16:], header[2])
	binary.LittleEndian.PutUint64(frame[24:], header[3])
	copy(frame[HeaderSize:], payload)
	return xxh3.Hash(frame)
}
