//go:build amd64 && !purego

package checksum

// forEachCPU calls f once for each code path this CPU can run: AVX2 and the generic code,
// with name naming the path. It is not safe to use from parallel tests.
func forEachCPU(f func(name string)) {
	asm := useAsm
	defer func() { useAsm = asm }()
	if asm {
		f("avx2")
	}
	useAsm = false
	f("generic")
}
