//go:build !amd64 || purego

package checksum

// useAsm is false: there is no assembly for this architecture or build.
const useAsm = false

func sumAsm([]byte) uint64 { panic("unreachable") }

func copySumAsm([]byte, *[4]uint64, []byte) uint64 { panic("unreachable") }
