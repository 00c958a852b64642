//go:build unix

package upstream

import "syscall"

// peekSocket looks at a socket's receive queue without consuming anything or blocking.
func peekSocket(fd uintptr) (sockState, bool) {
	var buf [1]byte
	n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		return sockIdle, true
	case err == nil && n > 0:
		return sockReady, true
	default: // n == 0: end of stream; or an error
		return sockClosed, true
	}
}
