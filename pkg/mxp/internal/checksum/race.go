//go:build race

package checksum

import (
	"runtime"
	"unsafe"
)

// The race detector does not see the assembly's memory accesses; these report them, so
// that a frame buffer hashed or written while another goroutine uses it is caught.

func raceReadRange(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&b[0]), len(b))
	}
}

func raceWriteRange(b []byte) {
	if len(b) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&b[0]), len(b))
	}
}
