package registry

import (
	"strings"
	"testing"
	"time"
)

// TestEffectiveHeartbeatInterval: an unset interval follows the lease (lease/3, floored at
// MinDerivedHeartbeatInterval), a set one is kept, and Validate refuses only a set one
// that is not shorter than the lease, or a negative one.
func TestEffectiveHeartbeatInterval(t *testing.T) {
	for _, tc := range []struct {
		lease, interval, want time.Duration
		badKey                string
	}{
		{lease: 30 * time.Second, want: 10 * time.Second},
		{lease: 2 * time.Second, want: 2 * time.Second / 3},
		{lease: time.Second, want: MinDerivedHeartbeatInterval},
		{lease: 1200 * time.Millisecond, want: MinDerivedHeartbeatInterval},
		{lease: 2 * time.Second, interval: 1500 * time.Millisecond, want: 1500 * time.Millisecond},
		{lease: time.Second, interval: 100 * time.Millisecond, want: 100 * time.Millisecond},
		{lease: 2 * time.Second, interval: 2 * time.Second, want: 2 * time.Second, badKey: "heartbeat_interval"},
		{lease: 2 * time.Second, interval: 10 * time.Second, want: 10 * time.Second, badKey: "heartbeat_interval"},
		{lease: 2 * time.Second, interval: -time.Second, want: 2 * time.Second / 3, badKey: "heartbeat_interval"},
	} {
		c := DefaultConfig()
		c.Lease, c.HeartbeatInterval = tc.lease, tc.interval
		if got := c.EffectiveHeartbeatInterval(); got != tc.want {
			t.Errorf("lease %v, interval %v: effective %v, want %v", tc.lease, tc.interval, got, tc.want)
		}
		err := c.Validate()
		switch {
		case tc.badKey == "" && err != nil:
			t.Errorf("lease %v, interval %v: %v", tc.lease, tc.interval, err)
		case tc.badKey != "" && (err == nil || !strings.Contains(err.Error(), tc.badKey)):
			t.Errorf("lease %v, interval %v: err %v, want one naming %s", tc.lease, tc.interval, err, tc.badKey)
		case tc.badKey == "" && c.EffectiveHeartbeatInterval() >= c.Lease:
			t.Errorf("lease %v: a valid config derives %v, not shorter than the lease", tc.lease, c.EffectiveHeartbeatInterval())
		}
	}
}
