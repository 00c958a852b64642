// Package transport is the secure MXP transport over UDP: X25519 identities, a one
// round-trip Noise IK handshake (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, as WireGuard) with
// a stateless cookie defence, ChaCha20-Poly1305 data packets numbered by a 64-bit counter,
// a sliding anti-replay window, rekeying, keepalives, idle timeout and close, reliable
// ordered messages (fragmentation, ACK ranges, RFC 6298 RTO, fast retransmit, flow and
// NewReno congestion control) and unreliable datagrams.
//
// It moves opaque messages ([]byte) and knows nothing of MXP frames: it must not import
// package mxp (the codec wraps it, not the other way round). docs/protocol.md Part II is
// the normative description of every packet and constant used here.
//
// Layout (one file per concern, after wireguard-go's device/): constants.go, keys.go,
// noise.go (handshake messages), cookie.go, replay.go, packet.go (wire parsing),
// ranges.go, session.go (keypairs and the index table), endpoint.go (socket, batching,
// demultiplexing), listener.go, dial.go, conn.go, send.go, receive.go, reliable.go,
// congestion.go, timers.go, stats.go.
package transport
