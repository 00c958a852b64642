package transport

// replayWindow is the sliding anti-replay filter of RFC 6479 as WireGuard uses it: a
// bitmap of ReplayWindowSize counters behind the highest one seen. It accepts reordering
// inside the window and rejects duplicates and anything older.
type replayWindow struct {
	last   uint64 // highest counter accepted plus one (0: nothing yet)
	bitmap [ReplayWindowSize / 64]uint64
}

const replayBlocks = ReplayWindowSize / 64

// check reports whether counter would be accepted, without recording it. Call it before
// decryption to drop obvious replays cheaply; call accept after decryption.
func (w *replayWindow) check(counter uint64) bool {
	if counter >= RejectAfterMessages {
		return false
	}
	c := counter + 1
	if c > w.last {
		return true
	}
	if w.last-c >= ReplayWindowSize-64 {
		return false
	}
	idx := (c >> 6) % replayBlocks
	return w.bitmap[idx]&(1<<(c&63)) == 0
}

// accept records counter; it returns false (and records nothing) for a replay. Must be
// called only for packets that decrypted correctly.
func (w *replayWindow) accept(counter uint64) bool {
	if counter >= RejectAfterMessages {
		return false
	}
	c := counter + 1
	if c > w.last {
		cur := w.last >> 6
		next := c >> 6
		diff := next - cur
		if w.last == 0 {
			diff = replayBlocks
		}
		if diff > replayBlocks {
			diff = replayBlocks
		}
		for i := uint64(1); i <= diff; i++ {
			w.bitmap[(cur+i)%replayBlocks] = 0
		}
		if w.last == 0 {
			w.bitmap[cur%replayBlocks] = 0
		}
		w.last = c
	} else if w.last-c >= ReplayWindowSize-64 {
		return false
	}
	idx := (c >> 6) % replayBlocks
	bit := uint64(1) << (c & 63)
	if w.bitmap[idx]&bit != 0 {
		return false
	}
	w.bitmap[idx] |= bit
	return true
}
