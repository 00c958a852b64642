package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// pingSummary is the --json output of ping. Round trips are in microseconds.
type pingSummary struct {
	Sent      int `json:"sent"`
	Received  int `json:"received"`
	Lost      int `json:"lost"`
	Corrupted int `json:"corrupted"`
	RTT       struct {
		P50 int64 `json:"p50"`
		P90 int64 `json:"p90"`
		P99 int64 `json:"p99"`
		Max int64 `json:"max"`
	} `json:"rtt_us"`
}

// setRTT fills the summary's round-trip percentiles from the calls' histogram (all zero
// when no call succeeded).
func (s *pingSummary) setRTT(h latencyUS) {
	s.RTT.P50, s.RTT.P90, s.RTT.P99, s.RTT.Max = h.quantile(50), h.quantile(90), h.quantile(99), h.max()
}

func init() {
	register(&command{
		Name:  "ping",
		Short: "send Calls with random payloads to an MXP server and check each echo",
		Usage: "--addr HOST:PORT --server-pubkey KEY [--count N] [--size BYTES] [--concurrency C] [--json]",
		Long: `ping dials the server (pinning --server-pubkey), sends --count Calls with random
payloads of --size bytes from --concurrency workers, checks each Response byte for byte and
prints each round trip and a summary. The exit status is non-zero if the handshake failed
or any call was lost or corrupted.

ping talks to mxp echo-server, which answers a bare Call with its payload. A mesh's edge
does not: it routes Calls to agents by target (use mxp call or mxp bench against a mesh).

Examples:
  mxp echo-server --listen 127.0.0.1:9300 --key server.key &
  mxp ping --addr 127.0.0.1:9300 --server-pubkey <its public key> --count 100
  mxp ping --addr 127.0.0.1:9300 --server-pubkey <its public key> --concurrency 8 --size 1024 --json`,
		Flags: func(fs *flag.FlagSet) {
			fs.String("addr", "127.0.0.1:9000", "server UDP address")
			fs.String("server-pubkey", "", "the server's public key (base64); required")
			fs.String("key", "", "client private key file; default: a fresh key")
			fs.Int("count", 10, "number of calls")
			fs.Int("size", 64, "payload size in bytes")
			fs.Int("concurrency", 1, "calls in flight at once")
			fs.Duration("timeout", 5*time.Second, "deadline of each call")
			fs.Bool("json", false, "print only a JSON summary")
		},
		Run: runPing,
	})
}

func runPing(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		return usagef("ping takes no arguments")
	}
	pub, err := mxp.ParsePublicKey(flagString(env, "server-pubkey"))
	if err != nil {
		return usagef("--server-pubkey: %v", err)
	}
	count, size, conc := flagValue[int](env, "count"), flagValue[int](env, "size"), flagValue[int](env, "concurrency")
	if count < 1 || size < 0 || size > mxp.MaxPayloadSize || conc < 1 {
		return usagef("--count and --concurrency must be positive and --size within 0..%d", mxp.MaxPayloadSize)
	}
	jsonOut, timeout := flagValue[bool](env, "json"), flagValue[time.Duration](env, "timeout")
	var key mxp.PrivateKey
	if path := flagString(env, "key"); path != "" {
		key, err = mxp.LoadPrivateKey(path)
	} else {
		key, err = mxp.GeneratePrivateKey()
	}
	if err != nil {
		return err
	}
	c, err := mxp.Dial(ctx, flagString(env, "addr"), mxp.Options{PrivateKey: key, ServerKey: pub})
	if err != nil {
		fmt.Fprintf(env.Stderr, "ping: handshake failed: %v\n", err)
		return exitError{2}
	}
	defer c.Close()
	var (
		mu      sync.Mutex
		sum     pingSummary
		rtts    = newLatencyUS()
		next    int
		refused int // calls the server answered with an MXP Error
		wg      sync.WaitGroup
		printMu sync.Mutex
	)
	worker := func() {
		defer wg.Done()
		payload := make([]byte, size)
		for {
			mu.Lock()
			if next == count {
				mu.Unlock()
				return
			}
			seq := next
			next++
			sum.Sent++
			mu.Unlock()
			crand.Read(payload)
			cctx, cancel := context.WithTimeout(ctx, timeout)
			start := time.Now()
			r, err := c.Call(cctx, &mxp.Frame{Type: mxp.TypeCall, Payload: payload})
			rtt := time.Since(start)
			cancel()
			mu.Lock()
			var re *mxp.RemoteError
			if errors.As(err, &re) {
				refused++
			}
			switch {
			case err != nil:
				sum.Lost++
			case r.Type != mxp.TypeResponse || !bytes.Equal(r.Payload, payload):
				sum.Corrupted++
			default:
				sum.Received++
				rtts.record(rtt)
			}
			mu.Unlock()
			if !jsonOut {
				printMu.Lock()
				if err != nil {
					fmt.Fprintf(env.Stdout, "seq=%d lost: %v\n", seq, err)
				} else {
					fmt.Fprintf(env.Stdout, "%d bytes from %s: seq=%d time=%v\n", len(r.Payload), c.RemoteAddr(), seq, rtt.Round(time.Microsecond))
				}
				printMu.Unlock()
			}
			if errors.Is(err, mxp.ErrConnClosed) {
				return
			}
		}
	}
	for range conc {
		wg.Add(1)
		go worker()
	}
	wg.Wait()
	mu.Lock()
	sum.Lost += count - sum.Sent // calls never sent because the connection closed
	sum.Sent = count
	mu.Unlock()
	sum.setRTT(rtts)
	if jsonOut {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(env.Stdout, string(b))
	} else {
		fmt.Fprintf(env.Stdout, "--- %s ping statistics ---\n%d sent, %d received, %d corrupted, %d lost\nrtt p50=%dus p90=%dus p99=%dus max=%dus\n",
			flagString(env, "addr"), sum.Sent, sum.Received, sum.Corrupted, sum.Lost, sum.RTT.P50, sum.RTT.P90, sum.RTT.P99, sum.RTT.Max)
	}
	if refused > 0 {
		// An echo server answers every Call; Errors mean a server that routes Calls by
		// their target: a mesh's edge, most likely (the README's tour points here).
		fmt.Fprintf(env.Stderr, "ping: %s answered %d of %d calls with an MXP Error, so it is not an echo server: ping is for mxp echo-server. "+
			"A mesh's edge routes each Call to its target; use mxp call --to NAME or mxp bench --to NAME there.\n",
			flagString(env, "addr"), refused, count)
	}
	if sum.Lost > 0 || sum.Corrupted > 0 {
		return exitError{1}
	}
	return nil
}
