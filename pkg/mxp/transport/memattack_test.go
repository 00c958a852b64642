package transport

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// sendFramesForTest seals frames (plaintext frames, as parseFrames reads them) into one
// data packet of c and sends it: a hostile peer's packet, authenticated like any other.
func sendFramesForTest(c *Conn, frames []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tx = c.ep.txPool.Get().(*txBatch)
	b := append(c.tx.bufs[0][:DataHeaderSize], frames...)
	c.sealLocked(c.current, b, time.Now())
	c.writeBatchLocked()
	putTxBatch(c.tx)
	c.tx = nil
}

// Issue 15, point 1: each connection declares a 16 MiB message (a 4-byte length prefix)
// and then sends one byte per 16 KiB across the 24 MiB receive window. The old receiver
// allocated the declared 16 MiB at once and a 16 KiB block per stray byte: about 40 MiB
// per connection for about 55 KB of UDP.
const (
	attackConns   = 16
	attackStride  = 16 << 10
	attackDeclare = 16 << 20
)

// memoryAttack runs the attack against a listener with cfg and returns the heap growth
// (HeapAlloc after GC, the clients included) and the UDP payload bytes the attackers sent.
func memoryAttack(tb testing.TB, cfg Config) (growth int64, sent int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.PrivateKey = mustKey(tb)
	l, err := Listen(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clients := make([]*Conn, attackConns)
	servers := make([]*Conn, attackConns)
	for i := range clients {
		c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(tb)})
		if err != nil {
			tb.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
		if servers[i], err = l.Accept(ctx); err != nil {
			tb.Fatal(err)
		}
		defer servers[i].Close()
	}
	limit := cfg.MaxPacketSize
	if limit == 0 {
		limit = DefaultPacketSize
	}
	limit -= DataOverhead
	packets := make([]uint64, len(clients))
	for i, c := range clients {
		packets[i] = servers[i].Stats().PacketsReceived
		frames := appendStreamHeader(nil, 0, 4)
		frames = appendVarint(frames, attackDeclare)
		for off := uint64(attackStride); off < DefaultRecvWindow; off += attackStride {
			if len(frames)+maxStreamHeader+1 > limit {
				sendFramesForTest(c, frames)
				sent += DataOverhead + len(frames)
				packets[i]++
				frames = frames[:0]
			}
			frames = appendStreamHeader(frames, off, 1)
			frames = append(frames, 'x')
		}
		sendFramesForTest(c, frames)
		sent += DataOverhead + len(frames)
		packets[i]++
	}
	// Every attack packet is processed (counted by its connection even when refused over
	// the budget), or its connection was evicted for holding the most of a stalled budget
	// (reservations of 16 MiB that never progress: the way out, reassembly.go).
	for i, s := range servers {
		for s.Stats().PacketsReceived < packets[i] {
			select {
			case <-s.done:
				if err := s.Err(); !errors.Is(err, ErrRecvBudget) {
					tb.Fatalf("connection closed during the attack: %v", err)
				}
			case <-ctx.Done():
				tb.Fatalf("waiting for the end of the attack: %d of %d packets", s.Stats().PacketsReceived, packets[i])
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), sent
}

// TestAttackMemoryAmplification is issue 15's point 1 as a regression test: 16
// connections holding "16 MiB follows" and a byte per 16 KiB of the window must not grow
// the heap by more than 64 MiB (the old receiver: about 640 MiB).
func TestAttackMemoryAmplification(t *testing.T) {
	growth, sent := memoryAttack(t, Config{})
	t.Logf("heap growth %.1f MiB for %d bytes of UDP from %d connections", float64(growth)/(1<<20), sent, attackConns)
	if growth > 64<<20 {
		t.Fatalf("heap grew by %.1f MiB (limit 64 MiB) for %d bytes of UDP", float64(growth)/(1<<20), sent)
	}
}

// BenchmarkMemoryAttack reports the heap growth of the attack above (heap_MiB) and its
// amplification (heap bytes per UDP byte sent).
func BenchmarkMemoryAttack(b *testing.B) {
	for range b.N {
		growth, sent := memoryAttack(b, Config{})
		b.ReportMetric(float64(growth)/(1<<20), "heap_MiB")
		b.ReportMetric(float64(growth)/float64(sent), "heap_B/udp_B")
	}
}

// TestRecvBudgetDropsAndRecovers: a listener whose receive budget holds a few messages
// drops (and does not acknowledge) what does not fit while its application does not read;
// once it reads, the sender's retransmissions deliver every message intact and in order,
// and every byte charged is returned when the connection closes.
func TestRecvBudgetDropsAndRecovers(t *testing.T) {
	checkNoLeak(t)
	l, c, s := pair(t, Config{RecvBudget: 64 << 10, MaxMessageSize: 24 << 10}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n, size = 20, 16 << 10
	for i := range n {
		msg := make([]byte, size)
		msg[0], msg[size-1] = byte(i), byte(i)
		if err := c.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a packet dropped over the budget", func() bool { return l.Stats().RecvBudgetDrops > 0 })
	if held := l.Stats().RecvHeld; held > 64<<10 {
		t.Fatalf("holding %d bytes over a budget of %d", held, 64<<10)
	}
	for i := range n {
		m, err := s.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(m) != size || m[0] != byte(i) || m[size-1] != byte(i) {
			t.Fatalf("message %d: %d bytes, marks %d %d", i, len(m), m[0], m[size-1])
		}
	}
	if st := s.Stats(); st.RecvBudgetDrops == 0 || st.MessagesReceived != n {
		t.Fatalf("server stats %+v", st)
	}
	s.Close()
	if held := l.Stats().RecvHeld; held != 0 {
		t.Fatalf("%d bytes still charged after the connection closed", held)
	}
}

// TestRecvBudgetReleasedOnClose: bytes a connection holds (a partial message, out-of-order
// fragments, unread messages and datagrams) return to the budget when it closes.
func TestRecvBudgetReleasedOnClose(t *testing.T) {
	l, c, s := pair(t, Config{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, []byte("unread")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendDatagram([]byte("unread datagram")); err != nil {
		t.Fatal(err)
	}
	frames := appendStreamHeader(nil, 7, 2) // "unread" took bytes 0..6: a 4-byte length prefix of 1000, then 1 byte
	frames = append(frames, 0x40|0x03, 0xe8)
	frames = appendStreamHeader(frames, 1000, 3) // and out-of-order bytes
	frames = append(frames, "abc"...)
	sendFramesForTest(c, frames)
	if err := c.SendDatagram([]byte("end")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the datagrams", func() bool { return s.Stats().DatagramsReceived == 2 })
	if held := l.Stats().RecvHeld; held == 0 {
		t.Fatal("nothing charged for what the connection holds")
	}
	s.Close()
	if held := l.Stats().RecvHeld; held != 0 {
		t.Fatalf("%d bytes still charged after the connection closed", held)
	}
}

// TestRecvBudgetKeepsSenderAlive: while a receiver refuses data over its budget for
// longer than the sender's DeadPeerTimeout, its ACKs of what it already holds keep the
// sender from declaring it dead (§3.2); once it reads, everything arrives. The receiver is
// the dialled side: a Listener would evict the connection once its budget stayed stalled
// for RecvStallTimeout (the way out, reassembly.go), and under load (RTOs from a long
// RTT) the five timeouts below could take longer than that.
func TestRecvBudgetKeepsSenderAlive(t *testing.T) {
	_, c, s := pair(t, Config{DeadPeerTimeout: 100 * time.Millisecond}, Config{RecvBudget: 64 << 10, MaxMessageSize: 24 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n, size = 20, 16 << 10
	for range n {
		if err := s.Send(ctx, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	// Five retransmission timeouts in a row: at least 10+20+40+80+160 ms of refusals,
	// over three times the sender's dead-peer timeout (seconds on a loaded machine, whose
	// RTT estimate makes the RTO long: bounded by ctx, not waitFor's 3 s).
	for s.Stats().Timeouts < 5 && s.Err() == nil {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for five retransmission timeouts: %+v", s.Stats())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("the sender gave up on a receiver that was only over its budget: %v", err)
	}
	if c.Stats().RecvBudgetDrops == 0 {
		t.Fatal("nothing was refused")
	}
	for i := range n {
		if _, err := c.Receive(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}
