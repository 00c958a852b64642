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
// handshake.go (handshake state of a connection), cookie.go, admission.go (the
// Listener's connection caps per source and per key), ratelimit.go (token buckets per
// source or key), replay.go, packet.go (wire parsing), ranges.go, session.go (keypairs,
// index table, timestamps), endpoint.go (socket, batching, demultiplexing), rx_linux.go
// and rx_other.go (recvmmsg, or one read at a time), gso_linux.go and gso_other.go (UDP
// GSO, or none), listener.go, dial.go, conn.go, lend.go (a dialled Conn lends its socket
// to a Receive caller), send.go, receive.go, reassembly.go (bounded receive memory:
// message length prefix and reservation, pieces, the receive budget), recvbudget.go (the
// way out of a full budget: a waiting reservation's retry, eviction of the largest
// holder), reliable.go (streams, ACKs, loss
// detection), reorder.go (spurious-loss adaptation), congestion.go (RTT, NewReno,
// HyStart++), liveness.go (dead-peer detection from unanswered traffic), stall.go (a
// helper reads the socket while OnMessage/OnDatagram handlers stall the read loop), timers.go,
// stats.go. The netem subpackage is the damaging relay used by the tests and `mxp relay`.
//
// Concurrency: one read loop per socket processes every received packet; each Conn has
// one mutex for its protocol state (taken by the read loop, Send, the timer) and a
// separate one for its receive queues, so readers do not wait on the read loop.
package transport
