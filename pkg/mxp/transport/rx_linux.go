package transport

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawReader calls recvmmsg directly into fixed buffers and parses source addresses into
// netip.AddrPort values: no allocation per packet. The socket stays in the runtime's
// poller (RawConn.Read waits for readability when the kernel has nothing).
type rawReader struct {
	rc     syscall.RawConn
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6 // large enough for IPv4 and IPv6 source addresses
	bufs   [][]byte
	single bool // single mode (see read)
	grow   bool // batch mode: the last read filled every buffer; double them
	waited bool // the current read found the socket empty and waited
	quiet  int  // batch mode: reads in a row that waited and brought one datagram
	busy   int  // single mode: reads in a row that found a datagram queued
	n      int
	errno  syscall.Errno
	fn     func(fd uintptr) bool
}

func newBatchReader(ep *endpoint) batchReader {
	rc, err := ep.udp.SyscallConn()
	if err != nil {
		return newXnetReader(ep)
	}
	r := &rawReader{rc: rc}
	r.resize(minRecvBatch)
	r.fn = r.recv
	return r
}

// minRecvBatch is the batch a reader starts with. A reader whose recvmmsg fills the whole
// batch doubles it, up to BatchSize: a quiet connection (an idle agent) keeps 4 buffers
// (8 KiB) instead of 64 (128 KiB), and a busy socket reaches the full batch after a few
// system calls.
//
// Request/response traffic, which finds one datagram at a time, reads with recvfrom
// instead (see read).
const minRecvBatch = 4

// resize gives the reader n buffers. Contract: called between reads (no packet of the
// previous batch is referenced any more).
func (r *rawReader) resize(n int) {
	r.hdrs = make([]unix.Mmsghdr, n)
	r.iovs = make([]unix.Iovec, n)
	r.names = make([]unix.RawSockaddrInet6, n)
	old := r.bufs
	r.bufs = make([][]byte, n)
	copy(r.bufs, old)
	for i := range r.hdrs {
		if r.bufs[i] == nil {
			r.bufs[i] = make([]byte, rxBufSize)
		}
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(rxBufSize)
		r.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
	}
}

// recv is the RawConn.Read callback: false asks the poller to wait for readability.
func (r *rawReader) recv(fd uintptr) bool {
	if r.single {
		return r.recvOne(fd)
	}
	for i := range r.hdrs {
		r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].Len = 0
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if retry, done := r.settle(int(n), e); !retry {
			return done
		}
	}
}

// recvOne reads one datagram with recvfrom, into the batch's first slot: for a single
// datagram it costs the kernel less than recvmmsg, which copies in and validates a
// message header and an iovec per call.
func (r *rawReader) recvOne(fd uintptr) bool {
	for {
		namelen := uint32(unix.SizeofSockaddrInet6)
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.bufs[0][0])), rxBufSize,
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&r.names[0])), uintptr(unsafe.Pointer(&namelen)))
		if e == 0 {
			r.hdrs[0].Len = uint32(n)
			n = 1 // datagrams, as recvmmsg counts
		}
		if retry, done := r.settle(int(n), e); !retry {
			return done
		}
	}
}

// settle records the outcome of a receive system call that brought n datagrams or failed
// with e. It reports whether to retry it (EINTR) and, if not, the answer for RawConn.Read
// (false on EAGAIN: wait for readability).
func (r *rawReader) settle(n int, e syscall.Errno) (retry, done bool) {
	switch e {
	case 0:
		r.n, r.errno = n, 0
		return false, true
	case unix.EINTR:
		return true, false
	case unix.EAGAIN:
		r.waited = true
		return false, false
	default:
		r.n, r.errno = 0, e
		return false, true
	}
}

// read reads the next batch, waiting for at least one datagram.
//
// A reader is in one of two modes. Batch mode asks recvmmsg for all its buffers, and
// doubles them (up to BatchSize) when a read fills them. Single mode asks recvfrom for one
// datagram: it is entered after singleAfter reads in a row that found the socket empty,
// waited and brought one datagram (request/response traffic, where recvmmsg only adds
// its header copies and a second look at the socket), and left when two reads in a row
// find datagrams already queued (a backlog, which batches drain in fewer calls). Only
// reads that brought datagrams count; a failed one (a deadline, an ICMP error) says
// nothing about the traffic.
func (r *rawReader) read() (int, error) {
	if r.grow {
		r.resize(min(2*len(r.hdrs), BatchSize))
		r.grow = false
	}
	r.waited = false
	if err := r.rc.Read(r.fn); err != nil {
		r.n = 0
		return 0, err
	}
	if r.errno != 0 {
		r.n = 0
		return 0, r.errno
	}
	r.observe()
	return r.n, nil
}

// observe updates the mode after a read that brought r.n datagrams.
func (r *rawReader) observe() {
	if r.single {
		if r.waited {
			r.busy = 0
		} else if r.busy++; r.busy >= 2 {
			r.single, r.quiet = false, 0
		}
		return
	}
	if r.waited && r.n == 1 {
		if r.quiet++; r.quiet >= singleAfter {
			r.single, r.busy = true, 0
		}
	} else {
		r.quiet = 0
	}
	// A full batch: more is probably queued. The buffers grow before the next read, once
	// the caller is done with this batch's.
	r.grow = r.n == len(r.hdrs) && r.n < BatchSize
}

// singleAfter is how many waited reads of one datagram in a row put a reader in single mode.
const singleAfter = 8

func (r *rawReader) packet(i int) ([]byte, netip.AddrPort, bool) {
	n := int(r.hdrs[i].Len)
	if n > rxBufSize {
		n = rxBufSize
	}
	name := (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(&r.names[i]))
	port := binary.BigEndian.Uint16(name[2:4])
	var addr netip.Addr
	switch r.names[i].Family {
	case unix.AF_INET:
		addr = netip.AddrFrom4([4]byte(name[4:8]))
	case unix.AF_INET6:
		addr = netip.AddrFrom16([16]byte(name[8:24])).Unmap()
	default:
		return nil, netip.AddrPort{}, false
	}
	return r.bufs[i][:n], netip.AddrPortFrom(addr, port), true
}
