package security

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LimiterConfig configures a per-key token-bucket limiter.
type LimiterConfig struct {
	// Rate is tokens per second per key; Burst is the bucket size.
	Rate  float64
	Burst int
	// MaxKeys bounds memory: when a new key would exceed it, the least recently used key
	// is evicted. Default 100,000.
	MaxKeys int
	// IdleTimeout evicts keys unused for this long. Default 10 minutes.
	IdleTimeout time.Duration
}

// Limiter is a per-key token bucket (golang.org/x/time/rate underneath) whose memory is
// bounded by MaxKeys (LRU eviction) and by idle eviction. It is safe for concurrent use.
type Limiter struct {
	mu    sync.Mutex
	cfg   LimiterConfig
	keys  map[string]*list.Element
	lru   *list.List // front = most recently used
	now   func() time.Time
	evict uint64
}

type limiterEntry struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// NewLimiter builds a Limiter.
func NewLimiter(cfg LimiterConfig) *Limiter {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 1
	}
	return &Limiter{cfg: cfg, keys: make(map[string]*list.Element), lru: list.New(), now: time.Now}
}

// Allow reports whether one event for key may happen now.
func (l *Limiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.evictIdleLocked(now, 2)
	var e *limiterEntry
	if el, ok := l.keys[key]; ok {
		e = el.Value.(*limiterEntry)
		l.lru.MoveToFront(el)
	} else {
		for len(l.keys) >= l.cfg.MaxKeys {
			l.removeLocked(l.lru.Back())
		}
		e = &limiterEntry{key: key, lim: rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)}
		l.keys[key] = l.lru.PushFront(e)
	}
	e.last = now
	return e.lim.AllowN(now, 1)
}

// SetRate changes rate and burst for every key (hot reload).
func (l *Limiter) SetRate(r float64, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if burst <= 0 {
		burst = 1
	}
	l.cfg.Rate, l.cfg.Burst = r, burst
	now := l.now()
	for _, el := range l.keys {
		e := el.Value.(*limiterEntry)
		e.lim.SetLimitAt(now, rate.Limit(r))
		e.lim.SetBurstAt(now, burst)
	}
}

// Len reports the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// Evictions reports how many keys were evicted (LRU or idle) since creation.
func (l *Limiter) Evictions() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evict
}

// Sweep evicts every idle key now; Allow also evicts a few idle keys on each call.
func (l *Limiter) Sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdleLocked(l.now(), -1)
}

// evictIdleLocked removes up to max idle keys from the LRU tail (all when max < 0).
func (l *Limiter) evictIdleLocked(now time.Time, max int) {
	for n := 0; max < 0 || n < max; n++ {
		el := l.lru.Back()
		if el == nil || now.Sub(el.Value.(*limiterEntry).last) < l.cfg.IdleTimeout {
			return
		}
		l.removeLocked(el)
	}
}

func (l *Limiter) removeLocked(el *list.Element) {
	e := l.lru.Remove(el).(*limiterEntry)
	delete(l.keys, e.key)
	l.evict++
}
