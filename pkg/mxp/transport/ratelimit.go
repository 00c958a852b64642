package transport

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a table of token buckets, one per key (a source address or a client's
// static key), in the style of wireguard-go's ratelimiter. A bucket holds up to burst
// tokens and refills at rate tokens per second; each allowed event takes one. Memory is
// bounded: buckets that are full again (idle) are swept every RateLimitSweepInterval, and
// when MaxRateLimitEntries buckets exist an arbitrary one is forgotten to make room (its
// key then starts again with a full bucket: forgetting favours availability, and the
// connection caps still bound what any key can hold). Safe for concurrent use.
type rateLimiter[K comparable] struct {
	cost int64 // refill time of one token, in nanoseconds (1e9/rate)
	max  int64 // the bucket's depth, in nanoseconds (cost × burst)
	off  bool  // a negative rate: every event is allowed

	mu    sync.Mutex
	table map[K]bucket
	swept int64 // UnixNano of the last sweep
}

// bucket is one key's tokens, counted in nanoseconds of refill, at time last (UnixNano).
type bucket struct {
	tokens, last int64
}

// newRateLimiter returns a table of buckets of rate events per second and depth burst
// (at least 1). A negative rate disables the limit.
func newRateLimiter[K comparable](rate float64, burst int) *rateLimiter[K] {
	if rate < 0 {
		return &rateLimiter[K]{off: true}
	}
	cost := int64(float64(time.Second) / rate)
	return &rateLimiter[K]{cost: cost, max: cost * int64(max(burst, 1)), table: make(map[K]bucket)}
}

// allow takes one token from key's bucket at now and reports whether there was one.
// Contract: the only place that moves a bucket; called once per event to be limited.
func (r *rateLimiter[K]) allow(key K, now time.Time) bool {
	if r.off {
		return true
	}
	n := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n-r.swept >= int64(RateLimitSweepInterval) {
		r.sweepLocked(n)
	}
	b, ok := r.table[key]
	if !ok {
		if len(r.table) >= MaxRateLimitEntries {
			for k := range r.table { // forget an arbitrary bucket (see the type's comment)
				delete(r.table, k)
				break
			}
		}
		r.table[key] = bucket{tokens: r.max - r.cost, last: n}
		return true
	}
	if n > b.last { // a clock stepping back refills nothing
		b.tokens = min(b.tokens+n-b.last, r.max)
		b.last = n
	}
	allowed := b.tokens >= r.cost
	if allowed {
		b.tokens -= r.cost
	}
	r.table[key] = b
	return allowed
}

// sweepLocked forgets the buckets that have refilled completely: they hold nothing a new
// bucket would not. Contract: r.mu held.
func (r *rateLimiter[K]) sweepLocked(n int64) {
	r.swept = n
	for k, b := range r.table {
		if n-b.last >= r.max-b.tokens {
			delete(r.table, k)
		}
	}
}

// len is the number of buckets held (tests and fuzzing check the bound).
func (r *rateLimiter[K]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.table)
}

// sourceOf names the source of a packet for limits and caps: its IPv4 address, or the
// /64 prefix of its IPv6 address (one subscriber usually holds a whole /64, so keying by
// full IPv6 address would give one attacker 2^64 buckets). The port never counts.
func sourceOf(a netip.AddrPort) netip.Addr {
	ip := a.Addr().Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(SourcePrefixIPv6)
		return p.Addr()
	}
	return ip
}
