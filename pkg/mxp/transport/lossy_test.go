package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport/netem"
)

// badNetwork is the damaged path: 10% loss, 5% duplication, 10% reordering,
// 2 ms ± 2 ms one-way delay.
var badNetwork = netem.Config{Loss: 0.10, Dup: 0.05, Reorder: 0.10, Delay: 2 * time.Millisecond, Jitter: 2 * time.Millisecond}

// logUniformSize draws a size between 1 and max with a log-uniform distribution: as many
// messages between 1 and 32 bytes as between 32 KiB and 1 MiB.
func logUniformSize(r *rand.Rand, max int) int {
	return int(math.Exp(r.Float64() * math.Log(float64(max))))
}

// message i: its index, then bytes derived from it, so the receiver can check content,
// order and uniqueness without keeping a copy.
func lossyMessage(i, size int) []byte {
	m := make([]byte, max(size, 8))[:size]
	r := rand.New(rand.NewPCG(uint64(i), 7))
	for j := range m {
		m[j] = byte(r.Uint32())
	}
	if size >= 8 {
		binary.LittleEndian.PutUint64(m, uint64(i))
	}
	return m
}

// runLossy sends n messages of log-uniform sizes up to maxSize and then one of bigSize
// through the damaging relay and checks that each arrives intact, once and in order.
func runLossy(t *testing.T, n, maxSize, bigSize int, timeout time.Duration) {
	checkNoLeak(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	relay, err := netem.New("127.0.0.1:0", l.Addr().String(), netem.Config{
		Loss: badNetwork.Loss, Dup: badNetwork.Dup, Reorder: badNetwork.Reorder,
		Delay: badNetwork.Delay, Jitter: badNetwork.Jitter, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	c, err := Dial(ctx, relay.Addr().String(), l.PublicKey(), Config{PrivateKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := make([]int, 0, n+1)
	for range n {
		sizes = append(sizes, logUniformSize(rng, maxSize))
	}
	sizes = append(sizes, bigSize)
	sendErr := make(chan error, 1)
	go func() {
		for i, size := range sizes {
			if err := c.Send(ctx, lossyMessage(i, size)); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	for i, size := range sizes {
		got, err := s.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d of %d: %v (client stats %+v)", i, len(sizes), err, c.Stats())
		}
		if !bytes.Equal(got, lossyMessage(i, size)) {
			t.Fatalf("message %d (%d bytes): wrong content or order (got %d bytes)", i, size, len(got))
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	// Nothing more may arrive: no duplicate delivery.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if m, err := s.Receive(short); err == nil {
		t.Fatalf("an extra message of %d bytes arrived", len(m))
	}
	st := c.Stats()
	rs := relay.Stats()
	t.Logf("relay %+v; client: lost %d packets (%d spurious), %d retransmitted bytes, %d timeouts, srtt %v, replays dropped at server %d",
		rs, st.PacketsLost, st.SpuriousLosses, st.RetransmittedBytes, st.Timeouts, st.SmoothedRTT, s.Stats().ReplaysDropped)
	if rs.Dropped == 0 || rs.Duplicated == 0 || rs.Reordered == 0 {
		t.Fatal("the relay did not damage the traffic")
	}
}

// TestLossyReduced is the default-suite version of the bad-network test: fewer and
// smaller messages, same damage.
func TestLossyReduced(t *testing.T) {
	runLossy(t, 200, 256<<10, 2<<20, 90*time.Second)
}
