// Package mxp is the MXP protocol for Go: the frame codec that every byte on the wire goes
// through, the payload profile (typed values for each message type), and agent ids.
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
// This package must not do I/O of its own beyond the io.Reader/io.Writer it is handed, keep
// state between calls, or log: it is a pure codec that the transport, the edge and the CLI
// share. The secure UDP transport lives in the transport subpackage, which knows nothing of
// frames.
package mxp
