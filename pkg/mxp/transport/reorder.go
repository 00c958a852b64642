package transport

import "time"

// reorderState detects spurious loss declarations (a packet declared lost that is later
// acknowledged: it was only reordered) and adapts to them, as RFC 9002 §6.1 allows and
// Linux's RACK does: the packet threshold grows to the observed reordering distance, the
// time threshold grows from 9/8 to 2 RTTs, the data the packet carried is counted as
// delivered, and when every loss of a recovery episode proves spurious the window cut is
// undone (Eifel response, RFC 4015).
type reorderState struct {
	packets  uint64                   // packet threshold: PacketThreshold, raised by observed reordering
	timeNum  int                      // time threshold numerator over TimeThresholdDen: 9, up to 16
	ring     *[reorderRing]lostRecord // allocated at the first loss: 12 KiB a clean connection never pays
	lastLoss time.Time                // when remember last ran
	next     int
	live     int // valid records in ring
	episode  uint64
	lost     int // losses declared in the current episode
	spurious int // ... of which proved spurious
}

const (
	reorderRing      = 128 // recently lost packets remembered
	maxPacketReorder = 64  // cap of the adaptive packet threshold

	// reorderForget: a ring without a new loss for this long, on a connection with
	// nothing in flight, is freed (its late ACKs, if any, came long ago).
	reorderForget = 5 * time.Second
)

type lostRecord struct {
	pn      uint64
	valid   bool
	episode uint64
	n       int
	streams [4]span
}

func (r *reorderState) init() { r.packets, r.timeNum = PacketThreshold, TimeThresholdNum }

// remember records a packet being declared lost.
func (r *reorderState) remember(p *sentPacket, now time.Time) {
	if r.ring == nil {
		r.ring = new([reorderRing]lostRecord)
	}
	r.lastLoss = now
	rec := &r.ring[r.next]
	if !rec.valid {
		r.live++
	}
	*rec = lostRecord{pn: p.pn, valid: true, episode: r.episode, n: p.n, streams: p.streams}
	r.next = (r.next + 1) % reorderRing
	r.lost++
}

// forget frees the ring when no loss was declared for reorderForget and nothing is in
// flight: a connection that lost packets once does not keep 12 KiB for the rest of its
// life. The adapted thresholds stay.
func (r *reorderState) forget(now time.Time, inFlight int) {
	if r.ring != nil && inFlight == 0 && now.Sub(r.lastLoss) >= reorderForget {
		r.ring, r.live, r.next = nil, 0, 0
	}
}

func (r *reorderState) newEpisode() {
	r.episode++
	r.lost, r.spurious = 0, 0
}

// checkSpuriousLocked looks for recently "lost" packets in an ACK frame.
func (c *Conn) checkSpuriousLocked(a *ackFrame) {
	r := &c.reorder
	if r.ring == nil {
		return
	}
	for i := range r.ring {
		rec := &r.ring[i]
		if !rec.valid {
			continue
		}
		for k := 0; k < a.n; k++ {
			if rec.pn < a.ranges[k].lo || rec.pn > a.ranges[k].hi {
				continue
			}
			rec.valid = false
			r.live--
			c.stats.spuriousLosses++
			if d := a.ranges[0].hi - rec.pn + 1; d > r.packets {
				r.packets = min(d, maxPacketReorder)
			}
			r.timeNum = min(r.timeNum+1, 2*TimeThresholdDen)
			for _, sp := range rec.streams[:rec.n] {
				c.snd.onAcked(sp)
			}
			if rec.episode == r.episode {
				if r.spurious++; r.spurious == r.lost {
					c.cc.undo()
				}
			}
			break
		}
	}
}
