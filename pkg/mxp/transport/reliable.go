package transport

import (
	"errors"
	"sort"
	"time"
)

var errFlowControl = errors.New("transport: peer exceeded the flow-control limit")

// sendStream is the sending half of the connection's reliable byte stream. Each message
// is written to it as a varint length followed by the bytes; STREAM frames carry
// (offset, bytes) and are retransmitted by range until acknowledged.
type sendStream struct {
	chunks     []sendChunk // messages not yet fully acknowledged, in offset order
	head       int
	writeOff   uint64   // end of the queued stream
	sendOff    uint64   // first byte never sent
	ackedBelow uint64   // every byte below is acknowledged
	acked      rangeSet // acknowledged ranges above ackedBelow
	lost       rangeSet // ranges to send again
	maxData    uint64   // the peer's flow-control limit (exclusive)
	limit      int
	block      []byte // the block small messages are being copied into
}

type sendChunk struct {
	off uint64
	b   []byte
}

func (s *sendStream) init(cfg *Config) {
	s.maxData = DefaultRecvWindow // every peer's window is at least this at the start
	s.limit = cfg.SendBuffer
}

// hasRoom reports whether a message of n bytes may be queued now.
func (s *sendStream) hasRoom(n int) bool {
	buffered := s.writeOff - s.ackedBelow
	return buffered == 0 || buffered+uint64(n)+8 <= uint64(s.limit)
}

// Small messages are copied into blocks (one allocation per block rather than per
// message); larger messages get their own buffer. A connection's first block is
// firstSendBlock bytes; a new block is twice the last, up to sendBlock, so that an idle
// connection holds little while a busy one allocates rarely. Once every queued byte is
// acknowledged the block is reused from its start (onAcked).
const (
	firstSendBlock = 1 << 10
	sendBlock      = 64 << 10
)

// push appends one message (length-prefixed, copied) to the stream.
func (s *sendStream) push(msg []byte) {
	n := varintLen(uint64(len(msg))) + len(msg)
	var b []byte
	if n <= sendBlock/4 {
		if cap(s.block)-len(s.block) < n {
			s.block = make([]byte, 0, min(sendBlock, max(firstSendBlock, 2*cap(s.block), n)))
		}
		start := len(s.block)
		s.block = appendVarint(s.block, uint64(len(msg)))
		s.block = append(s.block, msg...)
		b = s.block[start:len(s.block):len(s.block)]
	} else {
		b = make([]byte, 0, n)
		b = appendVarint(b, uint64(len(msg)))
		b = append(b, msg...)
	}
	s.chunks = append(s.chunks, sendChunk{off: s.writeOff, b: b})
	s.writeOff += uint64(n)
}

func (s *sendStream) allAcked() bool { return s.ackedBelow == s.writeOff }

// hasNew reports whether unsent bytes are allowed by flow control.
func (s *sendStream) hasNew() bool { return s.sendOff < s.writeOff && s.sendOff < s.maxData }

// read copies the stream bytes at off into dst (which must lie inside queued data).
func (s *sendStream) read(off uint64, dst []byte) {
	live := s.chunks[s.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].off+uint64(len(live[i].b)) > off })
	for len(dst) > 0 && i < len(live) {
		ch := live[i]
		n := copy(dst, ch.b[off-ch.off:])
		dst = dst[n:]
		off += uint64(n)
		i++
	}
}

// onAcked records that [sp.start, sp.end) arrived and frees fully acknowledged messages.
func (s *sendStream) onAcked(sp span) {
	if sp.end <= s.ackedBelow {
		return
	}
	s.acked.add(max(sp.start, s.ackedBelow), sp.end)
	k := 0
	for k < len(s.acked) && s.acked[k].start <= s.ackedBelow {
		s.ackedBelow = max(s.ackedBelow, s.acked[k].end)
		k++
	}
	if k > 0 { // drop the merged spans, keeping the backing array
		n := copy(s.acked, s.acked[k:])
		s.acked = s.acked[:n]
	}
	s.lost.remove(sp.start, sp.end)
	s.lost.removeBelow(s.ackedBelow)
	for s.head < len(s.chunks) && s.chunks[s.head].off+uint64(len(s.chunks[s.head].b)) <= s.ackedBelow {
		s.chunks[s.head] = sendChunk{}
		s.head++
	}
	if s.head == len(s.chunks) { // everything acknowledged: no chunk refers to the block
		s.chunks, s.head = s.chunks[:0], 0
		s.block = s.block[:0]
	} else if s.head > 1024 && s.head > len(s.chunks)/2 {
		n := copy(s.chunks, s.chunks[s.head:])
		clear(s.chunks[n:])
		s.chunks, s.head = s.chunks[:n], 0
	}
}

// onLost queues [sp.start, sp.end) for retransmission, minus what is acknowledged.
func (s *sendStream) onLost(sp span) {
	if sp.end <= s.ackedBelow {
		return
	}
	s.lost.add(max(sp.start, s.ackedBelow), sp.end)
	for _, a := range s.acked {
		if a.start < sp.end && a.end > sp.start {
			s.lost.remove(a.start, a.end)
		}
	}
}

// sentPacket is what the sender remembers about an ack-eliciting packet in flight.
type sentPacket struct {
	pn      uint64
	at      time.Time
	size    int
	n       int     // stream ranges carried
	streams [4]span // stream ranges carried (retransmitted on loss)
	maxData bool    // carried MAX_DATA (resent on loss)
	done    bool    // acknowledged or declared lost
}

// sentList holds sent packets in packet-number order.
type sentList struct {
	items []sentPacket
	head  int
}

func (l *sentList) push(p sentPacket) { l.items = append(l.items, p) }

func (l *sentList) live() []sentPacket { return l.items[l.head:] }

// compact drops finished packets from the front.
func (l *sentList) compact() {
	for l.head < len(l.items) && l.items[l.head].done {
		l.head++
	}
	if l.head == len(l.items) {
		l.items, l.head = l.items[:0], 0
	} else if l.head > 4096 && l.head > len(l.items)/2 {
		n := copy(l.items, l.items[l.head:])
		l.items, l.head = l.items[:n], 0
	}
}

// processAckLocked applies an ACK frame: it frees acknowledged data, samples the RTT,
// grows the congestion window and runs loss detection. Contract: read loop, c.mu held.
func (c *Conn) processAckLocked(a *ackFrame, now time.Time) {
	largest := a.ranges[0].hi
	if largest >= c.pn {
		c.stats.protocolErrors++ // acknowledges a packet never sent: ignore the frame
		return
	}
	live := c.sent.live()
	newly := false
	for r := 0; r < a.n; r++ {
		lo, hi := a.ranges[r].lo, a.ranges[r].hi
		i := sort.Search(len(live), func(i int) bool { return live[i].pn >= lo })
		for ; i < len(live) && live[i].pn <= hi; i++ {
			p := &live[i]
			if p.done {
				continue
			}
			p.done = true
			newly = true
			c.cc.onAck(p.size, p.at)
			for _, sp := range p.streams[:p.n] {
				c.snd.onAcked(sp)
			}
			if p.pn == largest {
				delay := time.Duration(min(a.delayMicros, uint64(MaxAckDelay/time.Microsecond))) * time.Microsecond
				c.rtt.update(now.Sub(p.at), delay)
				c.cc.onRTTSample(c.rtt.latest, largest, c.pn)
			}
		}
	}
	if c.reorder.live > 0 {
		c.checkSpuriousLocked(a)
	}
	if largest > c.largestAcked || !c.anyAcked {
		c.largestAcked, c.anyAcked = largest, true
	}
	if !newly {
		// The peer answers but acknowledges nothing new: it is alive and refusing data
		// over its receive budget (reassembly.go), not a dead path. Probe again after one
		// doubling, not an ever longer one: the data is taken as soon as memory frees up
		// (its receiver may otherwise evict a sender that waits out a long backoff).
		c.rtoBackoff = min(c.rtoBackoff, 1)
		return
	}
	c.rtoBackoff = 0
	c.detectLossLocked(now)
	c.sent.compact()
	if c.snd.hasRoom(0) {
		signal(c.writable)
	}
	if c.snd.allAcked() {
		signal(c.acked)
	}
}

// detectLossLocked declares lost the packets 3 numbers or 9/8 RTT behind the largest
// acknowledged one (RFC 9002 §6.1) and sets lossTime for the earliest pending one.
func (c *Conn) detectLossLocked(now time.Time) {
	c.lossTime = time.Time{}
	if !c.anyAcked {
		return
	}
	delay := max(c.rtt.srtt, c.rtt.latest) * time.Duration(c.reorder.timeNum) / TimeThresholdDen
	delay = max(delay, ClockGranularity)
	var lostSentAt time.Time
	live := c.sent.live()
	for i := range live {
		p := &live[i]
		if p.pn > c.largestAcked {
			break
		}
		if p.done {
			continue
		}
		if c.largestAcked >= p.pn+c.reorder.packets || !p.at.After(now.Add(-delay)) {
			c.markLostLocked(p, now)
			if p.at.After(lostSentAt) {
				lostSentAt = p.at
			}
			continue
		}
		if t := p.at.Add(delay); c.lossTime.IsZero() || t.Before(c.lossTime) {
			c.lossTime = t
		}
	}
	if !lostSentAt.IsZero() && c.cc.onLoss(lostSentAt, now) {
		c.reorder.newEpisode()
	}
}

// markLostLocked requeues what a lost packet carried.
func (c *Conn) markLostLocked(p *sentPacket, now time.Time) {
	c.reorder.remember(p, now)
	p.done = true
	c.cc.inFlight -= p.size
	for _, sp := range p.streams[:p.n] {
		c.snd.onLost(sp)
	}
	if p.maxData {
		c.maxDataDue = true
	}
	c.stats.packetsLost++
}

// onRTOLocked handles a retransmission timeout (RFC 6298 §5, with RFC 9002's probe
// behaviour): the oldest unacknowledged packets are requeued and up to two probe packets
// may go out past the congestion window; their ACKs let loss detection find the rest
// (instead of retransmitting everything in flight). The timer backs off; the window
// collapses on the second timeout in a row (persistent congestion).
func (c *Conn) onRTOLocked(now time.Time) {
	live := c.sent.live()
	marked := 0
	for i := range live {
		if !live[i].done {
			c.markLostLocked(&live[i], now)
			if marked++; marked == MaxProbes {
				break
			}
		}
	}
	c.sent.compact()
	if c.rtoBackoff >= 1 {
		c.cc.onRTO(now)
	}
	c.rtoBackoff++
	c.stats.timeouts++
	c.probedLocked(now)
	c.probes = MaxProbes
	c.pingDue = !c.snd.hasNew() && len(c.snd.lost) == 0 // probe with a PING when nothing else goes out
}

// rtoDeadline is when the retransmission timer fires (zero: nothing in flight).
func (c *Conn) rtoDeadline() time.Time {
	if c.cc.inFlight <= 0 {
		return time.Time{}
	}
	rto := c.rtt.rto() << min(c.rtoBackoff, 6)
	return c.lastEliciting.Add(min(rto, MaxRTO))
}
