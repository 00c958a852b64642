package main

import (
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// TestEchoHeartbeat: the echo agent heartbeats at --heartbeat when set, else at the
// interval the registry asked for, else at 10s. It used to keep a fixed 10s, so against a
// registry with a 2s lease it lost its lease between heartbeats.
func TestEchoHeartbeat(t *testing.T) {
	asked := mxp.RegisterResponse{Success: true, LeaseSeconds: 2, HeartbeatSeconds: 2.0 / 3}
	for _, tc := range []struct {
		flag time.Duration
		rr   mxp.RegisterResponse
		want time.Duration
	}{
		{0, asked, 666_666_666 * time.Nanosecond},
		{0, mxp.RegisterResponse{Success: true}, defaultEchoHeartbeat},
		{300 * time.Millisecond, asked, 300 * time.Millisecond},
	} {
		if got := echoHeartbeat(tc.flag, tc.rr); got != tc.want {
			t.Errorf("--heartbeat %v, registry %+v: %v, want %v", tc.flag, tc.rr, got, tc.want)
		}
	}
}
