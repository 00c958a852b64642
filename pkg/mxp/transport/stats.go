package transport

import "time"

// connCounters are a connection's counters; guarded by c.mu.
type connCounters struct {
	packetsSent, packetsRecv, bytesSent, bytesRecv uint64
	packetsLost, retransmittedBytes, timeouts      uint64
	messagesSent, messagesRecv                     uint64
	datagramsSent, datagramsRecv, datagramsDropped uint64
	replayed, authFailed, expiredDropped           uint64
	protocolErrors, rekeys, handshakesSent         uint64
	cookiesReceived, spuriousLosses                uint64
	deadPeer, portUnreachable                      uint64
	messagesTooLarge, recvBudgetDrops              uint64
}

// Stats is a snapshot of one connection.
type Stats struct {
	SmoothedRTT, RTTVar, LatestRTT, MinRTT time.Duration
	RTO                                    time.Duration
	PacketsSent, PacketsReceived           uint64
	BytesSent, BytesReceived               uint64  // UDP payload bytes, headers included
	PacketsLost                            uint64  // declared lost by loss detection or timeout
	SpuriousLosses                         uint64  // declared lost, then acknowledged (it was only reordered)
	LossRate                               float64 // PacketsLost / ack-eliciting packets sent
	RetransmittedBytes                     uint64
	Timeouts                               uint64 // retransmission timeouts
	MessagesSent, MessagesReceived         uint64
	MessagesTooLarge                       uint64 // refused: declared over Config.MaxMessageSize
	RecvBudgetDrops                        uint64 // packets (or datagrams) dropped: over the receive budget or the fragment limit
	DatagramsSent, DatagramsReceived       uint64
	DatagramsDropped                       uint64 // queue full on either side
	ReplaysDropped                         uint64 // duplicate or replayed packets dropped
	AuthFailures                           uint64 // packets that failed authentication
	ProtocolErrors                         uint64
	Rekeys                                 uint64 // handshakes completed, the first included
	HandshakesSent                         uint64
	CongestionWindow, BytesInFlight        int
	PortUnreachable                        uint64 // ICMP port unreachable reports (dialled connections, Linux)
	DeadPeer                               bool   // closed because the peer stopped answering (DeadPeerTimeout)
	Awaiting                               int    // outstanding Awaits: answers the application waits for (see Await)
}

// Stats returns a snapshot of the connection's counters and estimators.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.stats
	st := Stats{
		SmoothedRTT: c.rtt.srtt, RTTVar: c.rtt.rttvar, LatestRTT: c.rtt.latest, MinRTT: c.rtt.minRTT,
		RTO:         c.rtt.rto(),
		PacketsSent: s.packetsSent, PacketsReceived: s.packetsRecv,
		BytesSent: s.bytesSent, BytesReceived: s.bytesRecv,
		PacketsLost: s.packetsLost, SpuriousLosses: s.spuriousLosses, RetransmittedBytes: s.retransmittedBytes, Timeouts: s.timeouts,
		MessagesSent: s.messagesSent, MessagesReceived: s.messagesRecv,
		MessagesTooLarge: s.messagesTooLarge, RecvBudgetDrops: s.recvBudgetDrops,
		DatagramsSent: s.datagramsSent, DatagramsReceived: s.datagramsRecv, DatagramsDropped: s.datagramsDropped,
		ReplaysDropped: s.replayed, AuthFailures: s.authFailed, ProtocolErrors: s.protocolErrors,
		Rekeys: s.rekeys, HandshakesSent: s.handshakesSent,
		CongestionWindow: c.cc.cwnd, BytesInFlight: c.cc.inFlight,
		PortUnreachable: s.portUnreachable, DeadPeer: s.deadPeer > 0,
		Awaiting: int(c.awaiting.Load()),
	}
	if s.packetsSent > 0 {
		st.LossRate = float64(s.packetsLost) / float64(s.packetsSent)
	}
	return st
}

// ListenerStats are a listener's socket-level counters: handshakes and attacks. Every
// dropped packet is counted in exactly one of them, by the first check it failed.
type ListenerStats struct {
	Connections         int    // open connections
	PendingHandshakes   int    // open connections not yet confirmed by a data packet
	PacketsReceived     uint64 // UDP datagrams read
	BytesReceived       uint64
	HandshakesReceived  uint64 // initiations and responses
	HandshakesCompleted uint64 // keypairs confirmed
	CookieRepliesSent   uint64 // initiations answered with a cookie (under load)
	HandshakesDropped   uint64 // initiations dropped because the handshake queue was full
	MAC1Failures        uint64 // handshake packets not addressed to our key
	HandshakeAuthFailed uint64 // handshake packets (initiation, response, cookie reply) that failed to decrypt
	InitiationsReplayed uint64 // initiations with a timestamp not newer than the last one
	PeersRefused        uint64 // valid initiations from keys AllowPeer refused
	// Handshake admission (Config.HandshakeRate*, Max*): initiations dropped, by reason.
	RateLimitedSource     uint64 // proven initiations over their source's token bucket (under load)
	RateLimitedKey        uint64 // authenticated initiations over their client key's token bucket (under load)
	RefusedMaxConnections uint64 // new connections over MaxConnections
	RefusedMaxPending     uint64 // new connections over MaxPendingHandshakes
	RefusedSourceConns    uint64 // new connections over MaxConnectionsPerSource
	RefusedSourcePending  uint64 // new connections over MaxPendingPerSource
	DataAuthFailed        uint64 // data packets that failed authentication (tampered or forged)
	DataReplayed          uint64 // data packets dropped by the anti-replay window
	UnknownIndex          uint64 // packets for no known session
	Malformed             uint64 // packets of the wrong size or type
	DatagramsDroppedIn    uint64 // received datagrams dropped: a connection's DatagramQueue was full
	DatagramsDroppedOut   uint64 // datagrams not sent: a connection's send queue was full
	SessionIndexes        int    // live receiver indexes (sessions and pending handshakes)
	MessagesTooLarge      uint64 // messages refused from their length prefix (over Config.MaxMessageSize)
	RecvBudgetDrops       uint64 // data packets and datagrams dropped over the receive budget or fragment limit
	RecvHeld              int64  // bytes held now in reassembly and receive queues (against Config.RecvBudget)
	RecvBudgetEvictions   uint64 // connections closed (CloseRecvBudget) because the receive budget stalled full
	HandlerStalls         uint64 // times OnMessage handlers ran past HandlerStall and a helper read the socket (stall.go)
}

func (ep *endpoint) listenerStats(conns int) ListenerStats {
	k := &ep.counters
	return ListenerStats{
		Connections: conns, PacketsReceived: k.packetsIn.Load(), BytesReceived: k.bytesIn.Load(),
		HandshakesReceived: k.handshakesIn.Load(), HandshakesCompleted: k.handshakesDone.Load(),
		CookieRepliesSent: k.cookiesSent.Load(), HandshakesDropped: k.hsDropped.Load(), MAC1Failures: k.mac1Failed.Load(),
		HandshakeAuthFailed: k.authFailed.Load(), InitiationsReplayed: k.initReplayed.Load(),
		PeersRefused:      k.refused.Load(),
		RateLimitedSource: k.rateLimitedSource.Load(), RateLimitedKey: k.rateLimitedKey.Load(),
		RefusedMaxConnections: k.refusedMaxConns.Load(), RefusedMaxPending: k.refusedMaxPending.Load(),
		RefusedSourceConns: k.refusedSourceConns.Load(), RefusedSourcePending: k.refusedSourcePending.Load(),
		DataAuthFailed: k.dataAuthFailed.Load(), DataReplayed: k.replayed.Load(),
		UnknownIndex: k.unknownIndex.Load(), Malformed: k.malformed.Load(),
		DatagramsDroppedIn: k.datagramsDroppedIn.Load(), DatagramsDroppedOut: k.datagramsDroppedOut.Load(),
		SessionIndexes:   ep.index.len(),
		MessagesTooLarge: k.tooLarge.Load(), RecvBudgetDrops: k.recvBudgetDrops.Load(), RecvHeld: ep.recv.held.Load(),
		RecvBudgetEvictions: k.recvEvictions.Load(),
		HandlerStalls:       ep.stall.helpers.Load(),
	}
}
