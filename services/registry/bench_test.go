package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// benchRegistry runs a registry on an embedded server over loopback TCP (as a separate
// process would see it) and returns a client connection.
func benchRegistry(b *testing.B, cfg Config, st Store) (*nats.Conn, *Service) {
	b.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	nc, err := srv.Connect("registry")
	if err != nil {
		b.Fatal(err)
	}
	svc, err := NewWithStore(cfg, service.Deps{Conn: nc, Logger: quiet}, st)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Serving():
	case err := <-done:
		b.Fatalf("registry Run ended before serving: %v", err)
	}
	client, err := srv.Connect("client")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		<-done
		client.Close()
		nc.Close()
		srv.Shutdown()
	})
	return client, svc
}

func benchStores(b *testing.B) map[string]func() Store {
	return map[string]func() Store{
		"memory": func() Store { return NewMemoryStore() },
		"redis":  func() Store { return newRedisStore(b) },
	}
}

// BenchmarkHeartbeatsOverBus measures heartbeats one registry instance answers per second
// over NATS (loopback TCP), 64 requests in flight, 1,000 registered agents.
func BenchmarkHeartbeatsOverBus(b *testing.B) { benchHeartbeats(b, false) }

// BenchmarkHeartbeatsWithLifecycleOverBus is BenchmarkHeartbeatsOverBus with the Go SDK's
// heartbeat metadata ({"state":"active","accepting":"true"}) on every heartbeat.
func BenchmarkHeartbeatsWithLifecycleOverBus(b *testing.B) { benchHeartbeats(b, true) }

func benchHeartbeats(b *testing.B, lifecycle bool) {
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			st := benchStores(b)[kind]()
			client, _ := benchRegistry(b, testConfig(), st)
			const agents = 1000
			bodies := make([][]byte, agents)
			for i := range agents {
				body, _ := json.Marshal(reg(i+1, "bench", "chat"))
				if _, err := client.Request(bus.SubjectRegistryRegister, body, 5*time.Second); err != nil {
					b.Fatal(err)
				}
				bodies[i], _ = json.Marshal(mxp.HeartbeatRequest{AgentID: aid(i + 1)})
				if lifecycle {
					bodies[i] = []byte(heartbeatBody(i+1, "active", "true"))
				}
			}
			var next atomic.Int64
			var failed atomic.Int64
			b.SetParallelism(32) // 32 × GOMAXPROCS requesters
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) % agents
					msg, err := client.Request(bus.SubjectRegistryHeartbeat, bodies[i], 5*time.Second)
					if err != nil || bus.ReplyError(msg) != nil {
						failed.Add(1)
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d heartbeats failed", failed.Load())
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "heartbeats/s")
		})
	}
}

var (
	bigOnce  sync.Map // kind → *bigFixture
	bigCaps  = 100
	bigCount = 100_000
)

type bigFixture struct {
	once sync.Once
	st   Store
	err  error
}

// bigStore returns a store holding 100,000 agents, each with 3 of 100 capabilities
// (about 3,000 agents per capability), built once per process.
func bigStore(b *testing.B, kind string) Store {
	v, _ := bigOnce.LoadOrStore(kind, &bigFixture{})
	f := v.(*bigFixture)
	f.once.Do(func() {
		now := time.Now()
		mk := func(i int) Agent {
			a := testAgent(i+1, fmt.Sprintf("agent-%d", i), []string{
				fmt.Sprintf("cap-%d", i%bigCaps), fmt.Sprintf("cap-%d", (i*7+3)%bigCaps), fmt.Sprintf("cap-%d", (i*13+5)%bigCaps)})
			a.Capabilities = slices.Compact(slices.Sorted(slices.Values(a.Capabilities)))
			a.LastHeartbeat, a.ExpiresAt = now, now.Add(time.Hour)
			return a
		}
		switch kind {
		case "memory":
			s := NewMemoryStore()
			for i := range bigCount {
				a := mk(i) // with the parsed id and address registration stores (validateRegister)
				a.wireID = aid(i + 1)
				s.Register(context.Background(), a)
			}
			f.st = s
		case "redis":
			if redisURL == "" {
				f.err = fmt.Errorf("skipping: %s", redisMissing)
				return
			}
			s, err := NewRedisStore(context.Background(), RedisOptions{URL: redisURL, Prefix: "bench100k:"})
			if err != nil {
				f.err = err
				return
			}
			ctx := context.Background()
			if err := registerScript.Load(ctx, s.c).Err(); err != nil {
				f.err = err
				return
			}
			for start := 0; start < bigCount; start += 1000 {
				pipe := s.c.Pipeline()
				for i := start; i < start+1000; i++ {
					a := mk(i)
					args := []any{s.prefix, a.ID, string(a.descriptor()), ms(a.LastHeartbeat), ms(a.ExpiresAt), "", "", a.Owner, a.Name, s.graceMS()}
					for _, c := range a.Capabilities {
						args = append(args, c)
					}
					registerScript.Run(ctx, pipe, nil, args...)
				}
				if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
					f.err = err
					return
				}
			}
			f.st = s
		}
	})
	if f.err != nil && redisURL == "" {
		b.Skip(f.err)
	}
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.st
}

// BenchmarkDiscover100k measures discovery by one capability among 100,000 agents
// (first page of 100, through the registry's discover path without the bus) and reports
// the p50 and p99 latency.
func BenchmarkDiscover100k(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			st := bigStore(b, kind)
			svc := &Service{store: st, now: time.Now}
			cfg := testConfig()
			svc.cfg.Store(&cfg)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				t := time.Now()
				resp, err := svc.discover(ctx, mxp.DiscoverRequest{Capability: fmt.Sprintf("cap-%d", i%bigCaps)})
				lat = append(lat, time.Since(t))
				if err != nil || resp.Count != 100 {
					b.Fatalf("discover: %d agents, %v", resp.Count, err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_µs")
		})
	}
}

// BenchmarkRegisterSameName measures a registration (an update of one agent) of a name
// that n other agents of the same owner already hold: the owner check of Register. The
// per-op time must not grow with n (one claim per name, read in O(1)).
func BenchmarkRegisterSameName(b *testing.B) {
	const owner = "key:" + "VICTIMVICTIMVICTIMVICTIMVICTIMVICTIMVICTIM="
	for _, kind := range []string{"memory", "redis"} {
		for _, n := range []int{1, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				var st Store
				if kind == "memory" {
					st = NewMemoryStore()
				} else {
					st = newRedisStore(b)
				}
				ctx := context.Background()
				now := time.Now()
				mk := func(i int) Agent {
					a := testAgent(i, "echo", []string{"echo"})
					a.Owner, a.RegisteredAt, a.LastHeartbeat, a.ExpiresAt = owner, now, now, now.Add(time.Hour)
					return a
				}
				for i := 1; i <= n; i++ {
					if _, err := st.Register(ctx, mk(i)); err != nil {
						b.Fatal(err)
					}
				}
				a := mk(n + 1)
				for b.Loop() {
					if _, err := st.Register(ctx, a); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkExpiryLag measures the lag from lease end to the expired event while the
// registry also serves a steady heartbeat load. Each iteration lets 200 agents with a
// 1 s lease expire; p50, p99 and max lag are reported.
func BenchmarkExpiryLag(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.HTTP, cfg.Lease, cfg.HeartbeatInterval = "", time.Second, 300*time.Millisecond
			client, _ := benchRegistry(b, cfg, benchStores(b)[kind]())
			sub, err := client.SubscribeSync(bus.SubjectRegistryExpired)
			if err != nil {
				b.Fatal(err)
			}
			client.Flush()
			// Background load: 100 live agents heartbeating as fast as 8 workers can.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 100 {
				body, _ := json.Marshal(reg(1_000_000+i, "live", "chat"))
				client.Request(bus.SubjectRegistryRegister, body, 5*time.Second)
			}
			for w := range 8 {
				wg.Go(func() {
					body, _ := json.Marshal(mxp.HeartbeatRequest{AgentID: aid(1_000_000 + w)})
					for {
						select {
						case <-stop:
							return
						default:
							client.Request(bus.SubjectRegistryHeartbeat, body, 5*time.Second)
						}
					}
				})
			}
			defer func() { close(stop); wg.Wait() }()
			var lags []time.Duration
			const batch = 200
			n := 0
			b.ResetTimer()
			for b.Loop() {
				for range batch {
					n++
					body, _ := json.Marshal(reg(n, "short", "x"))
					if _, err := client.Request(bus.SubjectRegistryRegister, body, 5*time.Second); err != nil {
						b.Fatal(err)
					}
				}
				for range batch {
					m, err := sub.NextMsg(10 * time.Second)
					if err != nil {
						b.Fatal(err)
					}
					got := time.Now()
					var ev Event
					json.Unmarshal(m.Data, &ev)
					lags = append(lags, got.Sub(ev.Agent.LeaseExpiresAt))
				}
			}
			b.StopTimer()
			slices.Sort(lags)
			b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "p50_lag_ms")
			b.ReportMetric(float64(lags[len(lags)*99/100].Milliseconds()), "p99_lag_ms")
			b.ReportMetric(float64(lags[len(lags)-1].Milliseconds()), "max_lag_ms")
		})
	}
}

// BenchmarkHeartbeatMetadata measures checking the Go SDK's heartbeat metadata.
func BenchmarkHeartbeatMetadata(b *testing.B) {
	raw := json.RawMessage(`{"accepting":"false","state":"suspended"}`)
	b.ReportAllocs()
	for b.Loop() {
		if lc, err := validateHeartbeatMetadata(raw, DefaultHeartbeatMetadataSize); err != nil || lc == nil {
			b.Fatal(lc, err)
		}
	}
}
