package transport

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoSupported: UDP_SEGMENT exists on Linux (4.18+); older kernels refuse it at the
// first send and the endpoint falls back to sendmmsg.
const gsoSupported = true

// gsoControl builds the UDP_SEGMENT control message for segments of size bytes.
func gsoControl(size int) (oob [unix.SizeofCmsghdr + 8]byte) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	return oob
}

// gsoRefused reports whether err means the kernel or device does not do UDP GSO.
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIO) || errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EOPNOTSUPP)
}
