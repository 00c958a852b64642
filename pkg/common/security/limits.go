package security

import (
	"encoding/json"
	"fmt"
	"time"
)

// Limits are the input limits a service enforces on what it receives. The zero value of a
// field means "use the default" (see WithDefaults).
type Limits struct {
	// MaxPayloadBytes is the largest request body accepted. Default 1 MiB.
	MaxPayloadBytes int `yaml:"max_payload_bytes" reload:"live"`
	// MaxConcurrent bounds requests handled at once. Default 1024. Needs a restart.
	MaxConcurrent int `yaml:"max_concurrent"`
	// RequestTimeout bounds the handling of one request. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout" reload:"live"`
	// RatePerSecond and RateBurst set the per-key token bucket (0 disables rate limiting).
	RatePerSecond float64 `yaml:"rate_per_second" reload:"live"`
	RateBurst     int     `yaml:"rate_burst" reload:"live"`
}

// WithDefaults fills zero fields with their defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxPayloadBytes == 0 {
		l.MaxPayloadBytes = 1 << 20
	}
	if l.MaxConcurrent == 0 {
		l.MaxConcurrent = 1024
	}
	if l.RequestTimeout == 0 {
		l.RequestTimeout = 10 * time.Second
	}
	if l.RatePerSecond > 0 && l.RateBurst == 0 {
		l.RateBurst = int(l.RatePerSecond) + 1
	}
	return l
}

// Validate reports the first bad limit, naming it.
func (l Limits) Validate() error {
	switch {
	case l.MaxPayloadBytes < 0:
		return fmt.Errorf("max_payload_bytes: must be >= 0, got %d", l.MaxPayloadBytes)
	case l.MaxConcurrent < 0:
		return fmt.Errorf("max_concurrent: must be >= 0, got %d", l.MaxConcurrent)
	case l.RequestTimeout < 0:
		return fmt.Errorf("request_timeout: must be >= 0, got %v", l.RequestTimeout)
	case l.RatePerSecond < 0:
		return fmt.Errorf("rate_per_second: must be >= 0, got %v", l.RatePerSecond)
	case l.RateBurst < 0:
		return fmt.Errorf("rate_burst: must be >= 0, got %d", l.RateBurst)
	}
	return nil
}

func jsonUnmarshalString(b []byte, v *string) error { return json.Unmarshal(b, v) }
