package netem

import (
	"net"
	"testing"
	"time"
)

func TestRelayDamage(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		send      int
		minGot    int
		maxGot    int
		wantStats func(Stats) bool
	}{
		{"clean", Config{}, 50, 50, 50, func(s Stats) bool { return s.Forwarded == 100 && s.Dropped == 0 /* 50 each way */ }},
		{"all lost", Config{Loss: 1}, 50, 0, 0, func(s Stats) bool { return s.Dropped == 50 }},
		{"all duplicated", Config{Dup: 1}, 50, 100, 100, func(s Stats) bool { return s.Duplicated >= 50 }},
		{"delayed and reordered", Config{Reorder: 0.5, Delay: time.Millisecond, Jitter: time.Millisecond, Seed: 3}, 50, 50, 50,
			func(s Stats) bool { return s.Reordered > 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			r, err := New("127.0.0.1:0", up.LocalAddr().String(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cli, err := net.DialUDP("udp4", nil, r.Addr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			for i := range tt.send {
				cli.Write([]byte{byte(i)})
			}
			got := 0
			buf := make([]byte, 16)
			for {
				up.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, from, err := up.ReadFromUDPAddrPort(buf)
				if err != nil {
					break
				}
				got++
				up.WriteToUDPAddrPort(buf[:n], from) // the reply goes back through the relay
			}
			if got < tt.minGot || got > tt.maxGot {
				t.Fatalf("upstream got %d datagrams, want %d..%d", got, tt.minGot, tt.maxGot)
			}
			if s := r.Stats(); !tt.wantStats(s) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Loss: -0.1}, {Dup: 1.5}, {Delay: -time.Second}} {
		if c.Validate() == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
}

func TestUDPEcho(t *testing.T) {
	e, err := ListenUDPEcho("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p, err := DialUDPPinger(e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.RoundTrip([]byte("hello"), 10*time.Second); err != nil || string(p.buf[:5]) != "hello" {
		t.Fatalf("round trip: %v %q", err, p.buf[:5])
	}
	if _, err := p.RoundTrips(10, make([]byte, 256)); err != nil {
		t.Fatal(err)
	}
}
