package transport

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// keypair is one handshake's transport keys with everything needed to use them. Its
// fields are guarded by the owning Conn's mutex except the immutable ones.
type keypair struct {
	send, recv  cipher.AEAD
	localIndex  uint32 // peers address packets for this keypair to this index
	remoteIndex uint32 // our packets under this keypair carry this index
	created     time.Time
	isInitiator bool
	sent        uint64 // packets sealed with this keypair
	replay      replayWindow
}

func newKeypair(k sessionKeys, local, remote uint32, initiator bool, now time.Time) *keypair {
	s, _ := chacha20poly1305.New(k.send[:])
	r, _ := chacha20poly1305.New(k.recv[:])
	return &keypair{send: s, recv: r, localIndex: local, remoteIndex: remote, created: now, isInitiator: initiator}
}

// expired reports whether the keypair may no longer encrypt or decrypt.
func (kp *keypair) expired(now time.Time, rejectAfter time.Duration) bool {
	return now.Sub(kp.created) >= rejectAfter || kp.sent >= RejectAfterMessages
}

// nonce builds the 96-bit AEAD nonce: 32 zero bits, then the counter little-endian.
func nonce(counter uint64) (n [chacha20poly1305.NonceSize]byte) {
	binary.LittleEndian.PutUint64(n[4:], counter)
	return n
}

// indexEntry is what a receiver index in the index table points at: a keypair of a
// connection, or (kp == nil) an initiator's pending handshake.
type indexEntry struct {
	conn *Conn
	kp   *keypair
}

// indexTable maps local indexes to sessions. Indexes are random 32-bit values so that
// they reveal nothing about how many sessions exist.
type indexTable struct {
	mu sync.RWMutex
	m  map[uint32]indexEntry
}

func newIndexTable() *indexTable { return &indexTable{m: make(map[uint32]indexEntry)} }

// newIndex reserves a fresh random index for e (e.kp may be set later with set).
func (t *indexTable) newIndex(e indexEntry) uint32 {
	var b [4]byte
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		rand.Read(b[:])
		idx := binary.LittleEndian.Uint32(b[:])
		if _, used := t.m[idx]; !used && idx != 0 {
			t.m[idx] = e
			return idx
		}
	}
}

func (t *indexTable) set(idx uint32, e indexEntry) {
	t.mu.Lock()
	t.m[idx] = e
	t.mu.Unlock()
}

func (t *indexTable) lookup(idx uint32) (indexEntry, bool) {
	t.mu.RLock()
	e, ok := t.m[idx]
	t.mu.RUnlock()
	return e, ok
}

func (t *indexTable) remove(idx uint32) {
	t.mu.Lock()
	delete(t.m, idx)
	t.mu.Unlock()
}

func (t *indexTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// tai64n returns the TAI64N label of t (seconds since 1970 + 2^62 + 10, then nanoseconds),
// big-endian so that byte order is time order.
func tai64n(t time.Time) (ts [TimestampSize]byte) {
	binary.BigEndian.PutUint64(ts[:], uint64(1<<62+10+t.Unix()))
	binary.BigEndian.PutUint32(ts[8:], uint32(t.Nanosecond()))
	return ts
}

// timestamps hands out strictly increasing TAI64N labels in this process, so two
// initiations from one process never carry the same timestamp.
var timestamps struct {
	mu   sync.Mutex
	last time.Time
}

func nextTimestamp() [TimestampSize]byte {
	timestamps.mu.Lock()
	defer timestamps.mu.Unlock()
	now := time.Now().Round(0)
	if !now.After(timestamps.last) {
		now = timestamps.last.Add(time.Nanosecond)
	}
	timestamps.last = now
	return tai64n(now)
}
