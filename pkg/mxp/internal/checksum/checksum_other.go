//go:build !amd64 || purego

package checksum

import "github.com/zeebo/xxh3"

// useAsm is false: there is no assembly for this architecture or build.
const useAsm = false

func sumAsm(b []byte) uint64 { return xxh3.Hash(b) }

func copySumAsm(frame, payload []byte) uint64 {
	copy(frame[HeaderSize:], payload)
	return xxh3.Hash(frame)
}
