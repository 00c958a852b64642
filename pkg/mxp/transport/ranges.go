package transport

// span is the half-open interval [start, end).
type span struct{ start, end uint64 }

// rangeSet is a sorted set of disjoint, non-adjacent spans. It holds received packet
// numbers (for ACK frames), acknowledged stream offsets and stream bytes to retransmit.
type rangeSet []span

// add inserts [start, end), merging neighbours.
func (r *rangeSet) add(start, end uint64) {
	if start >= end {
		return
	}
	s := *r
	// Fast path: append at the end (in-order arrival).
	if n := len(s); n == 0 || s[n-1].end < start {
		*r = append(s, span{start, end})
		return
	} else if s[n-1].start <= start {
		if end > s[n-1].end {
			s[n-1].end = end
		}
		return
	}
	// First span whose end >= start (it may merge).
	i := 0
	for i < len(s) && s[i].end < start {
		i++
	}
	j := i
	for j < len(s) && s[j].start <= end {
		if s[j].start < start {
			start = s[j].start
		}
		if s[j].end > end {
			end = s[j].end
		}
		j++
	}
	if i == j {
		s = append(s, span{})
		copy(s[i+1:], s[i:])
		s[i] = span{start, end}
		*r = s
		return
	}
	s[i] = span{start, end}
	s = append(s[:i+1], s[j:]...)
	*r = s
}

// remove deletes [start, end) from the set.
func (r *rangeSet) remove(start, end uint64) {
	if start >= end {
		return
	}
	s := *r
	out := s[:0:0]
	changed := false
	for _, sp := range s {
		if sp.end <= start || sp.start >= end {
			out = append(out, sp)
			continue
		}
		changed = true
		if sp.start < start {
			out = append(out, span{sp.start, start})
		}
		if sp.end > end {
			out = append(out, span{end, sp.end})
		}
	}
	if changed {
		*r = out
	}
}

// trimTo keeps only the n highest spans.
func (r *rangeSet) trimTo(n int) {
	if len(*r) > n {
		s := *r
		copy(s, s[len(s)-n:])
		*r = s[:n]
	}
}

// removeBelow deletes everything below x.
func (r *rangeSet) removeBelow(x uint64) {
	s := *r
	i := 0
	for i < len(s) && s[i].end <= x {
		i++
	}
	if i > 0 {
		s = append(s[:0], s[i:]...)
	}
	if len(s) > 0 && s[0].start < x {
		s[0].start = x
	}
	*r = s
}
