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
package edge
