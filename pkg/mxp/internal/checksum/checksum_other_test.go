//go:build !amd64 || purego

package checksum

// forEachCPU calls f once: there is only the generic code.
func forEachCPU(f func(name string)) { f("generic") }
