// Package edge is the MXP edge service: it terminates MXP connections from agents (the
// secure UDP transport, and a plaintext listener for the reference SDK, off by default),
// decodes and validates every frame, applies per-connection limits (frame rate, calls in
// flight, message size), and turns each message into a NATS message on the mesh bus and
// each NATS reply back into an MXP frame.
//
// Routing: AgentRegister, AgentHeartbeat and AgentDiscover go to the registry; a Call goes
// to the agent it names, on whichever edge carries it (each edge subscribes a subject per
// agent it carries), or to a well-known service; Events go out on topics that agents
// subscribe to; streams are relayed in order with credit-based backpressure between edges.
// Every rejected frame is answered with an MXP Error frame carrying the offending message
// id, and counted.
//
// The edge holds no business logic and keeps no state beyond its live connections: it must
// not import another service (they meet on the bus), must not block one connection's
// traffic on another's, and must never drop a message silently.
//
// The transport sits behind Transport and Peer, so the edge's routing does not depend on
// how frames arrive.
//
// Files:
//
//   - edge.go: the Edge (New, Run, Reload) and the Handler the transports call (Opened,
//     Frame, Datagram, FrameTooLarge, Closed), the sweep. module.go: the edge as the
//     module runner (pkg/common/service) runs it.
//   - session.go: one connection's state, its frame loop and dispatch (handle), sending
//     frames to the peer, bus headers, close.
//   - call_caller.go: a Call from the caller's side: the peer's Call → the bus request →
//     its Response or Error back to the peer.
//   - call_callee.go: a Call from the called agent's side: the bus → delivery to the
//     agent's peer → its answer published to the caller; expiry and refused answers.
//   - replies.go: the reply router, one subscription and one deadline timer for every
//     bus request the edge makes.
//   - busreply.go: the micro error replies the edge publishes, and bus failures named in
//     MXP error codes.
//   - registry.go: AgentRegister, AgentHeartbeat, AgentDiscover, the agent claim and
//     deregistration.
//   - events.go: Events and topic subscriptions. stream.go, stream_service.go: streams
//     between agents, and to a service.
//   - queue.go: a session's frame queue. metrics.go: the mxp_edge_* series (the queue
//     depth gauges among them). metrics_poll.go: the secure transport's counters turned
//     into those series.
//   - tracing.go: the edge's spans (a request or Event from a peer, a Call or Event
//     delivered to one) and how they chain across MXP and the bus.
//   - transport.go, secure.go, compat.go: the transports; keyfile.go, allowlist.go: keys;
//     config.go: Config.
//
// A function that moves session state (s.pending, s.agents, s.streams, s.subs, the
// in-flight counts) says what it may change and under which lock on a Contract: line.
package edge
