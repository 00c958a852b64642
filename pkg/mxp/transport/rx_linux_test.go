package transport

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// The socket reader switches to recvfrom for request/response traffic and back to
// recvmmsg for a backlog; in both modes every datagram arrives whole, with its source.
func TestRawReaderModes(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			ip := net.IPv4(127, 0, 0, 1)
			if network == "udp6" {
				ip = net.IPv6loopback
			}
			srv, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer srv.Close()
			cli, err := net.DialUDP(network, nil, srv.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ep := &endpoint{udp: srv}
			r, ok := newBatchReader(ep).(*rawReader)
			if !ok {
				t.Skip("no raw reader on this platform")
			}
			from := netipUnmap(cli.LocalAddr().(*net.UDPAddr).AddrPort())
			check := func(i int, want []byte) {
				t.Helper()
				b, src, ok := r.packet(i)
				if !ok || !bytes.Equal(b, want) || src != from {
					t.Fatalf("packet %d: %q from %v (ok %v), want %q from %v", i, b, src, ok, want, from)
				}
			}

			// One datagram at a time, each sent after the read started waiting: single mode
			// after singleAfter such reads in a row (a read that finds its datagram already
			// there, on a slow machine, only delays the switch).
			for i := 0; !r.single; i++ {
				if i == 200 {
					t.Fatal("still in batch mode after 200 single-datagram exchanges")
				}
				msg := fmt.Appendf(nil, "one-%d", i)
				time.AfterFunc(time.Millisecond, func() { cli.Write(msg) })
				n, err := r.read()
				if err != nil || n != 1 {
					t.Fatalf("read %d: %d datagrams, %v", i, n, err)
				}
				check(0, msg)
			}
			// Single mode reads (recvfrom) bring the datagram and its source too.
			for i := range 3 {
				msg := fmt.Appendf(nil, "single-%d", i)
				time.AfterFunc(time.Millisecond, func() { cli.Write(msg) })
				if n, err := r.read(); err != nil || n != 1 {
					t.Fatalf("single read %d: %d datagrams, %v", i, n, err)
				}
				check(0, msg)
			}

			// A backlog: batch mode again, and nothing lost or reordered.
			const backlog = 100
			var want [][]byte
			for i := range backlog {
				msg := fmt.Appendf(nil, "burst-%03d-%s", i, bytes.Repeat([]byte{'x'}, i%300))
				want = append(want, msg)
				if _, err := cli.Write(msg); err != nil {
					t.Fatal(err)
				}
			}
			got, batches := 0, 0
			for got < backlog {
				n, err := r.read()
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					check(i, want[got+i])
				}
				got += n
				batches++
			}
			if r.single {
				t.Fatal("still in single mode after a backlog")
			}
			if batches >= backlog/2 {
				t.Fatalf("%d datagrams took %d reads", backlog, batches)
			}
		})
	}
}

// Reads that end by a deadline (a Receive whose ctx ended) bring nothing and must not count
// as reads that waited and brought one datagram.
func TestFailedReadsDoNotCountAsQuiet(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, _ := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	defer cli.Close()
	r := newBatchReader(&endpoint{udp: srv}).(*rawReader)
	time.AfterFunc(time.Millisecond, func() { cli.Write([]byte("x")) })
	if n, err := r.read(); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	for i := 0; i < singleAfter+1; i++ {
		srv.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		if _, err := r.read(); err == nil {
			t.Fatal("want deadline")
		}
	}
	if r.single {
		t.Errorf("single mode after 1 datagram and %d timed-out reads", singleAfter+1)
	}
}
