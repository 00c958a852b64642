package mxp

import (
	"net/netip"
	"strings"
	"testing"
)

// BenchmarkRegistryPayloads measures the JSON payloads of the registry: encoding and
// decoding an AgentRegister, and decoding a discovery answer of 100 agents as the registry
// sends it (the SDK's side of Discover).
func BenchmarkRegistryPayloads(b *testing.B) {
	id, _ := ParseAgentID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	req := RegisterRequest{ID: id, Name: "weather", Capabilities: []string{"weather.forecast", "geo", "tool.word_count"},
		Address:  netip.MustParseAddrPort("127.0.0.1:9000"),
		Metadata: AgentMetadata{Version: "1.2.0", Description: "forecasts", Tags: []string{"demo", "eu"}}}
	reg, err := req.AppendPayload(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("EncodeRegister", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		for b.Loop() {
			if _, err := req.AppendPayload(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeRegister", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeRegisterRequest(reg); err != nil {
				b.Fatal(err)
			}
		}
	})
	rec := `{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"weather","version":"1.2.0","description":"forecasts",` +
		`"capabilities":["geo","weather.forecast"],"tags":["demo","eu"],"address":"127.0.0.1:9000","state":"online","status":"Online",` +
		`"last_heartbeat":"2025-01-02T03:04:05Z","registered_at":"2025-01-02T03:00:00Z","lease_expires_at":"2025-01-02T03:04:35Z",` +
		`"metadata":{"description":"forecasts","tags":["demo","eu"],"version":"1.2.0"}}`
	resp := []byte(`{"capability":"geo","agents":[` + strings.TrimSuffix(strings.Repeat(rec+",", 100), ",") + `],"count":100}`)
	b.Run("DecodeDiscover100", func(b *testing.B) {
		b.SetBytes(int64(len(resp)))
		for b.Loop() {
			if _, err := DecodeDiscoverResponse(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}
