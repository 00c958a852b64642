package transport

import "time"

// Packet types: the first byte of every UDP payload. Bytes 1..3 are reserved and zero.
const (
	PacketInitiation  = 1 // handshake initiation, initiator → responder
	PacketResponse    = 2 // handshake response, responder → initiator
	PacketCookieReply = 3 // cookie reply, responder under load → initiator
	PacketData        = 4 // an encrypted data packet
)

// Sizes of the handshake packets and of the data packet framing, in bytes.
const (
	KeySize            = 32                                                                                         // X25519 public and private keys, symmetric keys
	TagSize            = 16                                                                                         // Poly1305 tag
	MACSize            = 16                                                                                         // mac1, mac2 and cookies (keyed BLAKE2s-128)
	TimestampSize      = 12                                                                                         // TAI64N
	ConnIDSize         = 8                                                                                          // the initiator's connection id, sent encrypted in the initiation
	CookieNonceSize    = 24                                                                                         // XChaCha20-Poly1305 nonce of a cookie reply
	InitiationSize     = 4 + 4 + KeySize + (KeySize + TagSize) + (TimestampSize + ConnIDSize + TagSize) + 2*MACSize // 156
	ResponseSize       = 4 + 4 + 4 + KeySize + TagSize + 2*MACSize                                                  // 92
	CookieReplySize    = 4 + 4 + CookieNonceSize + MACSize + TagSize                                                // 64
	DataHeaderSize     = 4 + 4 + 8                                                                                  // type+reserved, receiver index, counter
	DataOverhead       = DataHeaderSize + TagSize                                                                   // 32
	MinPacketSize      = 1200                                                                                       // smallest allowed MaxPacketSize
	DefaultPacketSize  = 1200                                                                                       // UDP payload size used unless configured
	MaxPacketSizeLimit = 1452                                                                                       // largest allowed MaxPacketSize (1500-byte MTU minus IPv6 and UDP headers)
	MaxMessageSize     = 16<<20 + 64                                                                                // largest reliable message: a 16 MiB MXP frame plus its header and checksum, rounded up
)

// Frame types inside a decrypted data packet.
const (
	FramePadding  = 0x00 // one zero byte; ignored
	FramePing     = 0x01 // ack-eliciting, no body
	FrameAck      = 0x02 // largest, delay µs, range count, first range, then (gap, length) pairs
	FrameStream   = 0x08 // offset, length, bytes of the reliable stream
	FrameMaxData  = 0x10 // the highest stream offset the peer may send, exclusive
	FrameDatagram = 0x30 // length, bytes of one unreliable message
	FrameClose    = 0x1c // error code, reason length, reason; ends the connection
)

// Protocol labels (they enter the hashes; changing one is a new protocol).
const (
	Construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
	Identifier   = "MXP transport v1 mxp-mesh"
	LabelMAC1    = "mac1----"
	LabelCookie  = "cookie--"
)

// Timers and limits of the secure channel (the names follow the WireGuard paper).
const (
	RekeyAfterMessages      = 1 << 60                // the initiator starts a new handshake after sending this many packets with one keypair
	RejectAfterMessages     = 1<<64 - 1<<13 - 1      // no keypair encrypts or accepts a counter at or above this
	RekeyAfterTime          = 120 * time.Second      // the initiator starts a new handshake when its keypair is this old
	RejectAfterTime         = 180 * time.Second      // a keypair older than this neither encrypts nor decrypts
	RekeyTimeout            = 500 * time.Millisecond // first handshake retransmission; doubles each time
	RekeyTimeoutMax         = 4 * time.Second        // cap of the handshake retransmission backoff
	CookieRefreshTime       = 120 * time.Second      // the responder's cookie secret changes this often
	CookieValidTime         = 115 * time.Second      // an initiator stops using a received cookie after this
	DefaultHandshakeTimeout = 10 * time.Second       // Dial gives up after this unless the context ends first
	DefaultKeepalive        = 10 * time.Second       // a PING is sent when nothing was sent for this long
	DefaultIdleTimeout      = 30 * time.Second       // a connection closes when nothing authenticated arrived for this long
	DefaultDeadPeerTimeout  = 2 * time.Second        // a connection closes when the peer answered nothing for this long while an answer was owed (ack-eliciting packets sent)
	ProbeDivisor            = 4                      // while the application awaits an answer (Conn.Await), a PING probes a peer silent for DeadPeerTimeout/ProbeDivisor
	DeadPeerPTOs            = 3                      // the dead-peer timeout is at least this many retransmission timeouts (RTO, from the RTT estimate): a slow path is not a dead peer
	HandlerStall            = 50 * time.Millisecond  // OnMessage handlers of one batch running this long: a helper reads the socket meanwhile (stall.go)
	MinDeadPeerProbes       = 2                      // probes (retransmission timeouts, liveness PINGs) that must go unanswered before a peer is declared dead
	ReplayWindowSize        = 8192                   // counters accepted behind the highest seen (bits in the window)
	UnderLoadHandshakes     = 1000                   // handshake packets per second above which the responder asks for cookies
	MaxTrackedPeers         = 1 << 16                // initiation timestamps remembered per static key (oldest forgotten first)
	HandshakeQueueSize      = 1024                   // initiations waiting for the handshake worker; more are dropped
)

// Admission: what one source address or one client key may cost a Listener. A source is an
// IPv4 address or an IPv6 /64 (one subscriber's prefix), never an address and port.
const (
	DefaultHandshakeRatePerSource  = 50          // proven initiations (valid mac2) per second and source, under load
	DefaultHandshakeBurstPerSource = 50          // ... and the bucket's depth
	DefaultHandshakeRatePerKey     = 50          // authenticated initiations per second and client key, under load
	DefaultHandshakeBurstPerKey    = 50          // ... and the bucket's depth
	DefaultMaxConnections          = 10_000      // connections of a Listener, confirmed or not
	DefaultMaxConnectionsPerSource = 1024        // ... from one source
	DefaultMaxPendingHandshakes    = 4096        // connections whose keys are not yet confirmed (first data packet), in all
	DefaultMaxPendingPerSource     = 64          // ... from one source
	MaxRateLimitEntries            = 1 << 16     // token buckets kept per table (sources, keys); when full an arbitrary one is forgotten
	RateLimitSweepInterval         = time.Second // buckets full again (idle) are swept this often
	SourcePrefixIPv6               = 64          // bits of an IPv6 address that name its source
)

// Reliability, flow and congestion control (RFC 6298, RFC 9002, RFC 6582).
const (
	InitialRTT           = 100 * time.Millisecond // RTT assumed before the first sample
	MinRTO               = 10 * time.Millisecond  // lower bound of the retransmission timeout (RFC 6298 says 1 s; like QUIC we rely on the RTT estimate instead)
	MaxRTO               = 10 * time.Second       // upper bound of the retransmission timeout after backoff
	ClockGranularity     = time.Millisecond       // G in RFC 6298
	MaxAckDelay          = 2 * time.Millisecond   // the longest a receiver holds back an ACK
	AckEveryPackets      = 2                      // an ACK is sent at once after this many ack-eliciting packets
	RecentGapWindow      = 64                     // ... and after every packet while a packet among the last 64 numbers is missing
	PacketThreshold      = 3                      // fast retransmit: a packet is lost when 3 later packets are acknowledged
	TimeThresholdNum     = 9                      // ... or when it is older than 9/8 of the RTT
	TimeThresholdDen     = 8
	MaxAckRanges         = 64                    // ranges sent in one ACK frame
	InitialWindowPackets = 10                    // initial congestion window, in packets
	MinWindowPackets     = 2                     // congestion window floor, in packets
	HyStartMinSamples    = 8                     // RTT samples per round before HyStart++ may end slow start (RFC 9406)
	HyStartMinThresh     = 4 * time.Millisecond  // RTT increase that ends slow start, lower clamp
	HyStartMaxThresh     = 16 * time.Millisecond // ... upper clamp (the threshold is lastRoundMinRTT/8, clamped)
	DefaultRecvWindow    = 24 << 20              // stream bytes a receiver lets the peer send beyond what its application consumed
	DefaultSendBuffer    = 24 << 20              // queued and unacknowledged stream bytes before Send blocks
	DefaultDatagramQueue = 1024                  // received datagrams buffered before the oldest is dropped
	DefaultMessageQueue  = 4096                  // received reliable messages buffered (they count against RecvWindow too)
	MaxProbes            = 2                     // packets a retransmission timeout may send past the congestion window
	BatchSize            = 64                    // packets per sendmmsg/recvmmsg
	CorkInFlight         = 4                     // packets in flight above which Send leaves small messages for the ACK clock
	MaxDatagramOverhead  = 1 + 3                 // datagram frame type and length varint (up to 3 bytes for < 16 KiB)
)

// Receive memory (reassembly.go; docs/protocol.md, "Receive memory").
const (
	DefaultRecvBudget = 64 << 20 // bytes an endpoint's connections may hold in reassembly and receive queues, together
	MaxRecvFragments  = 4096     // out-of-order fragments one connection may hold; more out-of-order data is dropped unacknowledged
	OversizePrefix    = 32       // bytes kept of a message over Config.MaxMessageSize (an MXP frame header), reported with its size
	MaxRecvOutOfOrder = 4 << 20  // out-of-order bytes one connection may hold (at most RecvBudget/8): a lossy bulk path's window

	RecvRetryInterval = 10 * time.Millisecond // a message whose reservation did not fit is retried this often while bytes wait behind it
	RecvStallTimeout  = time.Second           // data refused and nothing returned to the receive budget this long: the largest holder is evicted
)
