package registry

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// redisURL is set by TestMain when a local redis-server could be started.
var (
	redisURL     string
	redisMissing string
	prefixSeq    atomic.Int64
)

func TestMain(m *testing.M) {
	stop := startRedis()
	code := m.Run()
	stop()
	os.Exit(code)
}

// startRedis runs a throwaway redis-server on a free loopback port.
func startRedis() func() {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		redisMissing = "redis-server not found in PATH (install it, e.g. apt-get install redis-server; .ci/run does)"
		return func() {}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		redisMissing = err.Error()
		return func() {}
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		redisMissing = err.Error()
		return func() {}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			redisURL = "redis://" + addr + "/0"
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if redisURL == "" {
		redisMissing = "redis-server did not start"
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// newRedisStore returns a store with a fresh key prefix, or skips without redis-server.
func newRedisStore(tb testing.TB) *RedisStore {
	tb.Helper()
	if redisURL == "" {
		tb.Skipf("skipping Redis store tests: %s", redisMissing)
	}
	s, err := NewRedisStore(context.Background(), RedisOptions{URL: redisURL, Prefix: fmt.Sprintf("test%d:", prefixSeq.Add(1))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestRedisStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) Store { return newRedisStore(t) })
}

func TestRedisStoreNames(t *testing.T) {
	runNameSuite(t, func(t *testing.T, grace time.Duration) Store {
		if redisURL == "" {
			t.Skipf("skipping Redis store tests: %s", redisMissing)
		}
		s, err := NewRedisStore(context.Background(), RedisOptions{URL: redisURL,
			Prefix: fmt.Sprintf("test%d:", prefixSeq.Add(1)), NameClaimGrace: grace})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
