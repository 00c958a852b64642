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
// Layout (one file per concern, after wireguard-go's device/): constants.go (every
// protocol number), config.go, errors.go, keys.go, noise.go (handshake messages),
// handshake.go (handshake state of a connection), cookie.go, replay.go, packet.go (wire
// parsing), ranges.go, session.go (keypairs, index table, timestamps), endpoint.go
// (socket, batching, demultiplexing), rx_linux.go (recvmmsg), gso_linux.go (UDP GSO),
// listener.go, dial.go, conn.go, send.go, receive.go, reliable.go (streams, ACKs, loss
// detection), reorder.go (spurious-loss adaptation), congestion.go (RTT, NewReno,
// HyStart++), timers.go, stats.go. The netem subpackage is the damaging relay used by
// the tests and `mxp relay`.
//
// Concurrency: one read loop per socket processes every received packet; each Conn has
// one mutex for its protocol state (taken by the read loop, Send, the timer) and a
// separate one for its receive queues, so readers do not wait on the read loop.
package transport
