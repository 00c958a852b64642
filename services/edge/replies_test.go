package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// flushCounter is a batchPeer that counts what it was asked to queue and flush.
type flushCounter struct {
	queued, flushes atomic.Int64
	unflushed       atomic.Int64 // queued since the last flush
}

func (p *flushCounter) SendLater(context.Context, []byte) error {
	p.queued.Add(1)
	p.unflushed.Add(1)
	return nil
}

func (p *flushCounter) Flush() {
	p.flushes.Add(1)
	p.unflushed.Store(0)
}

// TestReplyRouterFlushesEachBurst checks the reply router's batching: a lone reply is
// flushed as soon as its callback returns (nothing waits behind it), and a burst of
// replies to one peer is flushed at least once and at most once per reply, never left
// queued.
func TestReplyRouterFlushesEachBurst(t *testing.T) {
	bs := testBus(t)
	nc, err := bs.NewConn("replies-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	r := newReplyRouter(nc, "test")
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	defer r.stop()

	send := func(p *flushCounter, n int) {
		var wg sync.WaitGroup
		wg.Add(n)
		for range n {
			err := r.request(&nats.Msg{Subject: "echo", Data: []byte("x")}, time.Now().Add(5*time.Second),
				func(reply *nats.Msg, err error, b *outBatch) {
					defer wg.Done()
					if err != nil || b == nil {
						t.Errorf("reply: err %v, batch %v", err, b != nil)
						return
					}
					_ = p.SendLater(context.Background(), reply.Data)
					b.add(p)
				})
			if err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
	}

	lone := &flushCounter{}
	send(lone, 1)
	waitFor(t, "the lone reply flushed", func() bool { return lone.flushes.Load() == 1 })

	burst := &flushCounter{}
	send(burst, 500)
	waitFor(t, "the burst flushed", func() bool { return burst.flushes.Load() >= 1 })
	if q, f := burst.queued.Load(), burst.flushes.Load(); q != 500 || f > q {
		t.Fatalf("burst: %d queued, %d flushes", q, f)
	}
	// The last reply of the burst was followed by a flush: nothing stays queued.
	waitFor(t, "nothing left queued after the burst", func() bool { return burst.unflushed.Load() == 0 })
}
