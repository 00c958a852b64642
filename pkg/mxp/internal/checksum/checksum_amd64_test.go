//go:build amd64 && !purego

package checksum

// forEachCPU calls f once for each code path this CPU can run: AVX2 and the generic code
// (the assembly's jump to it for lengths it would otherwise handle), with name naming the
// path. It is not safe to use from parallel tests.
func forEachCPU(f func(name string)) {
	avx2 := useAVX2
	defer func() { useAVX2 = avx2 }()
	if avx2 {
		f("avx2")
	}
	useAVX2 = false
	f("generic")
}
