// Package mxp is the MXP protocol for Go: the frame codec that every byte on the wire goes
// through, the payload profile (typed values for each message type), agent ids, and the
// frame-level connection API over the secure transport (Listen, Dial, Conn, Call, keys).
//
// A frame is a 32-byte header, a payload of at most 16 MiB and an XXH3-64 checksum,
// byte-compatible with the reference crate mxp 0.2.0 (see docs/protocol.md):
//
//	buf, err := mxp.AppendFrame(buf[:0], &mxp.Frame{Type: mxp.TypeCall, MessageID: 7, Payload: p})
//	f, n, err := mxp.Decode(buf) // f.Payload aliases buf; n bytes were used
//
// Decode and AppendFrame do not allocate. Decode checks the frame in the reference's order
// and reports the first fault as a typed error (BufferTooSmallError, InvalidMagicError, ...)
// that errors.Is matches against the sentinel kinds (ErrBufferTooSmall, ...) and errors.As
// unpacks; ErrorKind names the kind. Reader and Writer move frames over byte streams and
// never resynchronise: a bad frame is an error, not a guess.
//
// Listen and Dial return a Conn that sends and receives frames over the secure UDP transport
// (the transport subpackage, which moves opaque messages and knows nothing of frames);
// DialPlaintext runs the same Conn over the edge's plaintext UDP listener, and NewConn over
// any FrameConn. Conn is the repository's one correlator of MXP answers: Call (Start and
// Wait) matches a Response, Error or Ack to its request by message id, many in flight at
// once, with no reader goroutine of its own (the waiters take turns reading, see Conn).
// The agent SDK (pkg/agent) and the mxp command sit on it; client.go adds the edge's client
// operations (CallAgent, Register, Heartbeat, Discover, Respond).
//
// The codec half (Decode, AppendFrame, the payload types) must stay pure: no I/O beyond the
// io.Reader/io.Writer it is handed, no state between calls, no logging. Only conn.go,
// listen.go, dial.go, client.go, plaintext.go and keys.go touch the network or the file
// system.
package mxp
