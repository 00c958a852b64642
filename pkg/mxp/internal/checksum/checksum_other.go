//go:build !amd64 || purego

package checksum

// useAsm is false: there is no assembly for this architecture or build.
const useAsm = false

func sumAsm(b []byte) uint64 { panic("unreachable") }

func copySumAsm(frame []byte, header *[4]uint64, payload []byte) uint64 {
	panic("unreachable")
}
