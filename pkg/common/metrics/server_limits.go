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
	// DefaultIdleTimeout closes a keep-alive connection that sends no new request.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxHeaderBytes bounds a request's header block (a larger one gets 431).
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxConns bounds the connections served at once; more wait to be accepted.
	DefaultMaxConns = 1024
)

// ServerLimits bound what clients can hold of an HTTP server: time to send a request,
// time to take a response, idle keep-alive, header size, connections. Services expose it
// as the `http_limits` block of their config (see docs/configuration.md). Zero (or a
// negative value) means the default.
type ServerLimits struct {
	// ReadHeaderTimeout bounds reading the request headers. Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading the whole request, body included: a slow body is cut
	// off here, the connection closed. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response; streams (SSE) extend it per write, so a
	// stream lives as long as it keeps moving. Default 60s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConns bounds the connections open at once; a connection over the limit waits
	// in the kernel's accept queue until one closes. Default 1024.
	MaxConns int `yaml:"max_conns"`
}

// WithDefaults returns l with every unset (zero or negative) field at its default.
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
	return l
}
