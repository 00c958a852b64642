//go:build unix

package upstream

import "syscall"

// peekOpen reports whether a socket has neither pending bytes nor an end of stream,
// without consuming anything or blocking.
func peekOpen(fd uintptr) bool {
	var buf [1]byte
	// Data, an end of stream (n == 0) or an error all mean the connection cannot carry
	// the next request; only "would block" means it is idle and open.
	_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
