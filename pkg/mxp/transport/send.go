package transport

import (
	"time"
)

// maxStreamHeader is the largest STREAM frame header: type, 8-byte offset, 2-byte length.
const maxStreamHeader = 1 + 8 + 2

// hasDataLocked reports whether a packet other than a bare ACK is waiting to go out.
func (c *Conn) hasDataLocked() bool {
	return c.maxDataDue || c.pingDue || len(c.dgramOut) > 0 || c.closeDue != nil ||
		(c.canSendLocked() && (len(c.snd.lost) > 0 || c.snd.hasNew()))
}

// canSendLocked reports whether the congestion window (or a timeout's probe budget)
// allows another full packet.
func (c *Conn) canSendLocked() bool {
	return c.probes > 0 || c.cc.canSend(c.cfg.MaxPacketSize)
}

// flushLocked builds, seals and sends every packet that is due and allowed by the
// congestion window and flow control, in batches of up to BatchSize (sendmmsg).
// Contract: c.mu held; the single place that seals data packets and assigns packet numbers.
func (c *Conn) flushLocked(now time.Time) {
	kp := c.current
	if kp == nil || kp.expired(now, c.cfg.RejectAfter) {
		return
	}
	if !(c.ackQueue > 0 && !now.Before(c.ackDue)) && !c.hasDataLocked() {
		return // nothing due (the loop's condition below): no batch to borrow
	}
	limit := c.cfg.MaxPacketSize - TagSize
	sentEliciting := false
	c.tx = c.ep.txPool.Get().(*txBatch)
	defer func() { putTxBatch(c.tx); c.tx = nil }() // writeBatchLocked below empties it
	for {
		ackNow := c.ackQueue > 0 && (!now.Before(c.ackDue) || c.hasDataLocked())
		if !ackNow && !c.hasDataLocked() {
			break
		}
		if c.tx.n == BatchSize {
			c.writeBatchLocked()
		}
		b := c.tx.bufs[c.tx.n][:DataHeaderSize]
		p := sentPacket{}
		eliciting := false
		if ackNow && len(c.recvPNs) > 0 {
			delay := uint64(0)
			if !c.ackDue.IsZero() && now.After(c.ackDue.Add(-MaxAckDelay)) {
				delay = uint64(now.Sub(c.ackDue.Add(-MaxAckDelay)) / time.Microsecond)
			}
			b = appendAck(b, c.recvPNs, delay)
			c.ackQueue, c.ackDue = 0, time.Time{}
		}
		closing := c.closeDue != nil
		if closing {
			b = appendClose(b, c.closeDue.Code, c.closeDue.Reason)
			c.closeDue = nil
		} else {
			if c.maxDataDue {
				b = append(b, FrameMaxData)
				b = appendVarint(b, c.rcv.maxData)
				c.maxDataDue, p.maxData, eliciting = false, true, true
			}
			if c.pingDue {
				b = append(b, FramePing)
				c.pingDue, eliciting = false, true
			}
			for len(c.dgramOut) > 0 {
				d := c.dgramOut[0]
				if len(b)+MaxDatagramOverhead+len(d) > limit {
					break
				}
				b = append(b, FrameDatagram)
				b = appendVarint(b, uint64(len(d)))
				b = append(b, d...)
				c.dgramOut[0] = nil
				c.dgramOut = c.dgramOut[1:]
				eliciting = true
			}
			if len(c.dgramOut) == 0 {
				c.dgramOut = nil
			}
			if c.canSendLocked() {
				b = c.appendStreamLocked(b, limit, &p)
				if p.n > 0 {
					eliciting = true
				}
			}
		}
		if len(b) == DataHeaderSize {
			break
		}
		if p.n > 0 && limit-len(b) < maxStreamHeader {
			old := len(b)
			b = b[:limit] // pad a full data packet to exactly MaxPacketSize (GSO segments are equal)
			clear(b[old:])
		}
		c.sealLocked(kp, b, now)
		if eliciting {
			p.pn, p.at, p.size = c.pn-1, now, len(b)+TagSize
			c.cc.inFlight += p.size
			c.sent.push(p)
			c.lastEliciting = now
			c.sentElicitingLocked(now)
			sentEliciting = true
			if c.probes > 0 {
				c.probes--
			}
		}
		if closing {
			break
		}
	}
	c.writeBatchLocked()
	if sentEliciting && !c.closed {
		// The retransmission timer must run from the packets just sent: a send outside
		// the read loop and the timer (Send, Flush) arms nothing else.
		if d := c.rtoDeadline(); !d.IsZero() && (c.timerAt.IsZero() || d.Before(c.timerAt)) {
			c.armTimerLocked(now)
		}
	}
	if kp.sent >= RekeyAfterMessages && c.isClient && c.hs.st == nil {
		c.startHandshakeLocked(now)
	}
}

// appendStreamLocked adds STREAM frames: retransmissions first, then new bytes.
func (c *Conn) appendStreamLocked(b []byte, limit int, p *sentPacket) []byte {
	for p.n < len(p.streams) && len(c.snd.lost) > 0 && limit-len(b) > maxStreamHeader {
		sp := c.snd.lost[0]
		n := min(sp.end-sp.start, uint64(limit-len(b)-maxStreamHeader))
		b = appendStreamHeader(b, sp.start, int(n))
		start := len(b)
		b = b[:start+int(n)]
		c.snd.read(sp.start, b[start:])
		c.snd.lost.remove(sp.start, sp.start+n)
		p.streams[p.n] = span{sp.start, sp.start + n}
		p.n++
		c.stats.retransmittedBytes += n
	}
	if p.n < len(p.streams) && c.snd.hasNew() && limit-len(b) > maxStreamHeader {
		off := c.snd.sendOff
		n := min(c.snd.writeOff-off, c.snd.maxData-off, uint64(limit-len(b)-maxStreamHeader))
		b = appendStreamHeader(b, off, int(n))
		start := len(b)
		b = b[:start+int(n)]
		c.snd.read(off, b[start:])
		c.snd.sendOff += n
		p.streams[p.n] = span{off, off + n}
		p.n++
	}
	return b
}

// sealLocked encrypts the packet in b (header plus plaintext frames) in place with the
// next packet number and queues it in the batch.
func (c *Conn) sealLocked(kp *keypair, b []byte, now time.Time) {
	pn := c.pn
	c.pn++
	kp.sent++
	putDataHeader(b, kp.remoteIndex, pn)
	c.txNonce = nonce(pn)
	out := kp.send.Seal(b[DataHeaderSize:DataHeaderSize], c.txNonce[:], b[DataHeaderSize:], b[:DataHeaderSize])
	pkt := b[:DataHeaderSize+len(out)]
	i := c.tx.n
	c.tx.bufs[i] = pkt
	c.tx.msgs[i].Buffers[0] = pkt
	if c.remoteUA != nil {
		c.tx.msgs[i].Addr = c.remoteUA
	} else {
		c.tx.msgs[i].Addr = nil // connected socket (an interface holding a nil pointer would not do)
	}
	c.tx.n++
	c.stats.packetsSent++
	c.stats.bytesSent += uint64(len(pkt))
	c.lastSend = now
}

// writeBatchLocked hands the queued packets to the kernel: runs of full-size packets as
// one UDP GSO send each where the kernel supports it, the rest in one sendmmsg.
func (c *Conn) writeBatchLocked() {
	if c.tx.n == 0 {
		return
	}
	if c.tx.n == 1 { // one packet (request/response traffic): plain sendmsg, the cheapest call
		c.ep.writeOne(c.tx.bufs[0], c.remote)
		c.tx.bufs[0] = c.tx.bufs[0][:0]
		c.tx.n = 0
		return
	}
	first := 0
	if c.ep.gso.Load() {
		first = c.writeGSOLocked()
	}
	if first < c.tx.n {
		c.ep.writeBatch(c.tx.msgs[first:c.tx.n])
	}
	for i := 0; i < c.tx.n; i++ {
		c.tx.bufs[i] = c.tx.bufs[i][:0]
	}
	c.tx.n = 0
}

// maxGSOBytes bounds one GSO send (a UDP datagram's length field is 16 bits).
const maxGSOBytes = 65000

// writeGSOLocked sends the leading runs of full-size packets with UDP GSO and returns the
// index of the first packet it did not send. On a kernel without GSO it turns GSO off
// for the endpoint and returns 0.
func (c *Conn) writeGSOLocked() int {
	stride := c.tx.stride
	perSend := max(maxGSOBytes/stride, 1)
	i := 0
	for i < c.tx.n {
		j := i
		for j < c.tx.n && j-i < perSend && len(c.tx.bufs[j]) == stride {
			j++
		}
		if j < c.tx.n && j-i < perSend && j > i {
			j++ // the last segment of a GSO send may be shorter
		}
		if j-i < 2 {
			return i
		}
		if !c.ep.writeGSO(c.tx.slab[i*stride:(j-1)*stride+len(c.tx.bufs[j-1])], stride, c.remote) {
			return i
		}
		i = j
	}
	return i
}
