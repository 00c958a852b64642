package transport

import (
	"errors"
	"fmt"
)

// Errors a caller can test with errors.Is.
var (
	ErrClosed            = errors.New("transport: connection closed")
	ErrListenerClosed    = errors.New("transport: listener closed")
	ErrIdleTimeout       = errors.New("transport: idle timeout: nothing heard from the peer")
	ErrPeerUnreachable   = errors.New("transport: peer unreachable")
	ErrHandshakeTimeout  = errors.New("transport: handshake timed out")
	ErrMessageTooLarge   = errors.New("transport: message larger than MaxMessageSize")
	ErrDatagramTooLarge  = errors.New("transport: datagram does not fit in one packet")
	ErrKeysExpired       = errors.New("transport: session keys expired without a rekey")
	ErrPeerClosed        = errors.New("transport: the peer closed the connection")
	ErrProtocolViolation = errors.New("transport: the peer violated the protocol")
	ErrOnMessage         = errors.New("transport: messages go to Config.OnMessage, not Receive")
	ErrOnDatagram        = errors.New("transport: datagrams go to Config.OnDatagram, not ReceiveDatagram")
	ErrSendBufferFull    = errors.New("transport: send buffer full (Send from OnMessage or OnDatagram does not wait)")
	// ErrRefused: the listener turned the connection away at a connection cap (its
	// CloseError, code CloseRefused, gives which one); retry later or elsewhere.
	ErrRefused = errors.New("transport: the listener refused the connection (connection limit)")
	// ErrRecvBudget: the listener closed the connection (CloseRecvBudget) because its
	// receive budget stayed full while data was refused, and this connection held the
	// most of it (messages its application did not take, or partial messages).
	ErrRecvBudget = errors.New("transport: connection evicted: it held the most of a full receive budget")
	errBadPoint   = errors.New("transport: low-order public key")
)

// MessageTooLargeError is a received message that was refused because its declared size
// is above Config.MaxMessageSize: Prefix holds its first bytes (up to OversizePrefix,
// enough for an MXP frame header, so that the application can name the message in its
// answer), Size its declared length. The rest was discarded; the connection stays open.
// errors.Is(err, ErrMessageTooLarge) is true.
type MessageTooLargeError struct {
	Prefix []byte
	Size   uint64
	Limit  uint64 // the limit in force when the length prefix arrived
}

func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("transport: received message of %d bytes is over the limit of %d", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrMessageTooLarge) true.
func (e *MessageTooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// CloseError is the reason a peer gave when it closed the connection.
type CloseError struct {
	Code   uint64 // 0: normal close
	Reason string
	Remote bool // true: the peer closed; false: this side did
	cause  error
}

// Unwrap returns the local cause (ErrIdleTimeout, ErrHandshakeTimeout, ...), if any.
func (e *CloseError) Unwrap() error { return e.cause }

func (e *CloseError) Error() string {
	side := "local"
	if e.Remote {
		side = "peer"
	}
	return fmt.Sprintf("transport: connection closed by %s (code %d): %s", side, e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrPeerClosed) true for a close by the peer, ErrRefused for a
// peer's CloseRefused, ErrRecvBudget for a peer's CloseRecvBudget, and ErrClosed for all.
func (e *CloseError) Is(target error) bool {
	return target == ErrClosed || (e.Remote && target == ErrPeerClosed) ||
		(e.Remote && e.Code == CloseRefused && target == ErrRefused) ||
		(e.Remote && e.Code == CloseRecvBudget && target == ErrRecvBudget)
}

// Close codes carried by a CLOSE frame.
const (
	CloseNormal        = 0 // the application closed the connection
	CloseProtocolError = 1 // a malformed frame inside an authenticated packet
	CloseFlowControl   = 2 // the peer sent beyond the advertised window
	CloseIdle          = 3 // informational: closing after the idle timeout
	CloseRefused       = 4 // the listener refused a new connection at a cap; the reason names it
	CloseUnreachable   = 5 // the peer stopped answering (DeadPeerTimeout; sent in case it is only slow) or its host refused (ICMP)
	CloseRecvBudget    = 6 // the listener's receive budget stayed full and this connection held the most of it
)
