package metrics

import "time"

// Defaults of ServerLimits: what an admin or API HTTP server of the mesh allows one
// client. A zero field takes its default.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request, headers and body: a body that
	// is still arriving then is cut off (the body deadline).
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds writing a response, from the end of its request's
	// headers. Streaming responses extend it per write (StreamDeadline). It is above
	// 30 s so that /debug/pprof/profile's default 30 s profile fits.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection that sends no new request. It is
	// above 60 s, the idle timeout load balancers commonly hold toward a backend and the
	// longest usual scrape interval, so neither reuses a connection this server is
	// closing at that moment; it no longer decides whether new clients get in (a waiting
	// connection evicts the longest-idle one), only how long an idle client holds a
	// file descriptor, so 120 s was longer than needed.
	DefaultIdleTimeout = 75 * time.Second
	// DefaultMaxHeaderBytes bounds a request's header block (a larger one gets 431).
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxConns bounds the connections served at once; a further one makes the
	// longest-idle keep-alive connection close, or waits for one to close.
	DefaultMaxConns = 1024
	// DefaultMaxConnsPerIP bounds the connections open at once from one source IP; one
	// more is closed at once. 64 leaves room for many clients behind one NAT while one
	// address cannot take more than a sixteenth of DefaultMaxConns. Behind a proxy or
	// load balancer every connection comes from its address: raise it to max_conns or
	// set it negative there.
	DefaultMaxConnsPerIP = 64
)

// ServerLimits bound what clients can hold of an HTTP server: time to send a request,
// time to take a response, idle keep-alive, header size, connections. Services expose it
// as the `http_limits` block of their config (see docs/configuration.md). Zero (or a
// negative value) means the default, except MaxConnsPerIP, where negative means no cap.
type ServerLimits struct {
	// ReadHeaderTimeout bounds reading the request headers. Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading the whole request, body included: a slow body is cut
	// off here, the connection closed. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response; streams (SSE) extend it per write, so a
	// stream lives as long as it keeps moving. Default 60s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long. Default 75s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConns bounds the connections open at once. A connection over the limit closes
	// the longest-idle keep-alive connection to take its place
	// (mxp_http_idle_evictions_total); with none idle it waits until one closes or turns
	// idle. Default 1024.
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerIP bounds the connections open at once from one source IP; one over it
	// is closed as soon as it is accepted (mxp_http_connections_refused_total). Default
	// 64; negative: no per-IP cap (behind a proxy or load balancer, whose one address
	// carries every client).
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
}

// WithDefaults returns l with every unset (zero or negative) field at its default; a
// negative MaxConnsPerIP stays negative (no per-IP cap).
func (l ServerLimits) WithDefaults() ServerLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerIP == 0 {
		l.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	return l
}
