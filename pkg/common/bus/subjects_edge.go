package bus

import "strings"

// Edge subjects (services/edge). The edge carries agents: for each agent registered over
// one of its connections it subscribes AgentSubject(id) + ".>", so that a Call or a stream
// for that agent reaches the edge that carries it, whichever edge the caller is on.
// Events published by agents travel on EventSubject(topic).
const (
	// SubjectAgentPrefix is the root of the per-agent subjects: mxp.agent.<agent-id>.<verb>.
	SubjectAgentPrefix = "mxp.agent."
	// AgentVerbCall: request/reply; body is the Call's data, the reply is the Response
	// payload or a micro error reply carrying an MXP Error payload.
	AgentVerbCall = "call"
	// AgentVerbStream: request/reply that opens a stream to the agent; body is the
	// StreamOpen data, headers HeaderStreamID, HeaderStreamKind and HeaderStreamPeer (the
	// opener's stream subject). The reply carries HeaderStreamPeer of the accepting edge.
	AgentVerbStream = "stream"
	// AgentVerbProbe: request/reply; the edge that carries the agent answers at once
	// (empty body) without involving the agent. Edges probe before accepting a
	// registration, so one agent id is never carried by two connections.
	AgentVerbProbe = "probe"

	// SubjectEdgePrefix is the root of each edge's own subjects: mxp.edge.<edge-id>.<verb>.
	SubjectEdgePrefix = "mxp.edge."
	// EdgeVerbStream carries stream traffic between two edges (chunks, credit, close),
	// identified by HeaderStreamID and HeaderStreamOp.
	EdgeVerbStream = "stream"

	// SubjectEventPrefix is the root of agent events: mxp.events.<topic>. An MXP topic
	// ("build.finished") maps onto the subject as it is.
	SubjectEventPrefix = "mxp.events."

	// HeaderStreamID is the stream id (UUID text) on stream traffic between edges.
	HeaderStreamID = "Mxp-Stream-Id"
	// HeaderStreamKind is the StreamOpen kind byte, in decimal.
	HeaderStreamKind = "Mxp-Stream-Kind"
	// HeaderStreamPeer is the subject where the sending edge takes the stream's traffic.
	HeaderStreamPeer = "Mxp-Stream-Peer"
	// HeaderStreamOp is the operation of an inter-edge stream message: "chunk", "credit"
	// (the body is a decimal count of chunks the receiver can take) or "close" (the body
	// is empty for a clean end or an MXP Error payload).
	HeaderStreamOp = "Mxp-Stream-Op"
	// HeaderEventTopic is the MXP topic of an event (the subject without its prefix).
	HeaderEventTopic = "Mxp-Event-Topic"
	// HeaderPeer identifies the caller's connection: "key:<public key>" on the secure
	// transport, "compat:<ip:port>" on the plaintext listener.
	HeaderPeer = "Mxp-Peer"
)

// AgentSubject returns mxp.agent.<id>.<verb>.
func AgentSubject(id, verb string) string {
	return SubjectAgentPrefix + id + "." + verb
}

// EdgeSubject returns mxp.edge.<edge-id>.<verb>.
func EdgeSubject(edgeID, verb string) string {
	return SubjectEdgePrefix + edgeID + "." + verb
}

// EventSubject returns the subject of an MXP event topic or topic pattern ("*" matches one
// token, a final ">" the rest).
func EventSubject(topic string) string { return SubjectEventPrefix + topic }

// EventTopic returns the MXP topic of an event subject ("" when subject is not one).
func EventTopic(subject string) string {
	t, ok := strings.CutPrefix(subject, SubjectEventPrefix)
	if !ok {
		return ""
	}
	return t
}
