package agent

import (
	"context"
	"encoding/json"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// RunConn runs the agent over an established frame connection until ctx ends, Retire is
// called or the connection fails: it boots, registers (with backoff), becomes Active,
// serves its handlers, and on the way out drains, deregisters and closes fc. Run dials the
// edge and calls RunConn; use RunConn directly to bring your own connection.
func (a *Agent) RunConn(ctx context.Context, fc FrameConn) error {
	self, err := mxp.ParseAgentID(a.cfg.ID)
	if err != nil {
		return err
	}
	l := newLink(fc, self, a.log)
	a.out.Store(outHolder{l})
	return a.serve(ctx, l)
}

func (a *Agent) outbound() (outbound, error) {
	h, _ := a.out.Load().(outHolder)
	o := h.o
	if o == nil {
		return nil, &Error{Code: CodeUnavailable, Message: errNotConnected.Error(), Err: errNotConnected}
	}
	return o, nil
}

func (a *Agent) connected() (*link, error) {
	o, err := a.outbound()
	if err != nil {
		return nil, err
	}
	return o.current(), nil
}

// resolveTarget turns a target into an agent id: a UUID, or the name of a well-known
// service ("registry", "inference", "tools", "policy").
func resolveTarget(to string) (mxp.AgentID, error) {
	if id, ok := mxp.ServiceByName(to); ok {
		return id, nil
	}
	id, err := mxp.ParseAgentID(to)
	if err != nil {
		return mxp.AgentID{}, Errorf(CodeInvalidArgument, "target %q is neither an agent id nor a service name", to)
	}
	return id, nil
}

// Call sends payload to another agent (by id) or a service (by name) and returns its
// Response. Errors from the far side come back with their code (see CodeOf): the callee's
// own codes, or the mesh's (unreachable, timeout, ...). The context's deadline is sent
// with the call.
func (a *Agent) Call(ctx context.Context, to string, payload []byte) ([]byte, error) {
	l, err := a.connected()
	if err != nil {
		return nil, err
	}
	target, err := resolveTarget(to)
	if err != nil {
		return nil, err
	}
	ctx, span := a.startRequest(ctx, "agent.call", to)
	out, err := l.call(ctx, target, payload)
	endSpan(span, err)
	return out, err
}

// CallJSON is Call with req encoded as JSON and the Response decoded into resp.
func (a *Agent) CallJSON(ctx context.Context, to string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return Errorf(CodeInvalidArgument, "encoding request: %v", err)
	}
	out, err := a.Call(ctx, to, body)
	if err != nil {
		return err
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(out, resp); err != nil {
		return Errorf(CodeInvalidPayload, "decoding the response of %s: %v", to, err)
	}
	return nil
}

// Discover asks the registry for agents: those with every capability in req, named
// req.Name, with a name starting with req.NamePrefix and carrying req.Tag (empty filters
// match all; look a name up with Name, which lookalike names cannot crowd out), and, with
// req.AcceptingOnly, only those that take calls. Each record shows the agent's reported
// lifecycle (Lifecycle, Accepting) once its heartbeats carry it.
func (a *Agent) Discover(ctx context.Context, req mxp.DiscoverRequest) ([]mxp.AgentRecord, error) {
	l, err := a.connected()
	if err != nil {
		return nil, err
	}
	ctx, span := a.startRequest(ctx, "agent.discover", "registry")
	out, err := l.discover(ctx, req)
	endSpan(span, err)
	return out, err
}

// CallCapability calls an agent offering capability and returns the first answer. It
// discovers the agents that take calls (the registry's accepting_only filter leaves out
// agents whose heartbeats report them suspended or retiring) and calls them in the order
// the registry lists them, skipping this agent, agents not online and any record that
// says it is not accepting. An agent that answers CodeUnavailable (suspended or retiring
// since its last heartbeat) or CodeUnreachable (gone) is skipped for the next; any other
// answer, success or error, is returned. When every such agent was skipped, the agents
// reported as not accepting are tried too, in case they resumed since their last
// heartbeat. No agent at all gives CodeNotFound; otherwise the last skip's error is
// returned (CodeUnavailable when every provider is suspended).
func (a *Agent) CallCapability(ctx context.Context, capability string, payload []byte) ([]byte, error) {
	agents, err := a.Discover(ctx, mxp.DiscoverRequest{Capabilities: []string{capability}, AcceptingOnly: true})
	if err != nil {
		return nil, err
	}
	tried := make(map[mxp.AgentID]bool, len(agents))
	var lastErr error
	try := func(recs []mxp.AgentRecord, accepting bool) (done bool, out []byte, err error) {
		for _, rec := range recs {
			if tried[rec.ID] || !a.callable(rec) || accepting != (rec.Accepting == nil || *rec.Accepting) {
				continue
			}
			tried[rec.ID] = true
			out, err := a.Call(ctx, rec.ID.String(), payload)
			switch CodeOf(err) {
			case CodeUnavailable, CodeUnreachable:
				lastErr = err
				continue
			}
			return true, out, err
		}
		return false, nil, nil
	}
	if done, out, err := try(agents, true); done {
		return out, err
	}
	// Nobody took the call: ask again without the filter, for agents that resumed after
	// their last report (and for registries that show no lifecycle to filter on).
	all, err := a.Discover(ctx, mxp.DiscoverRequest{Capabilities: []string{capability}})
	if err != nil {
		if lastErr != nil {
			return nil, lastErr
		}
		return nil, err
	}
	for _, accepting := range []bool{true, false} {
		if done, out, err := try(all, accepting); done {
			return out, err
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, Errorf(CodeNotFound, "no online agent offers %q", capability)
}

// callable reports whether CallCapability may try rec: another agent, and online.
func (a *Agent) callable(rec mxp.AgentRecord) bool {
	return rec.ID.String() != a.cfg.ID && (rec.Status == "" || rec.Status == mxp.StatusOnline)
}

// Publish sends an Event on topic (dot-separated tokens of letters, digits, '_' and '-').
// Events are one-way; delivery is not confirmed.
func (a *Agent) Publish(ctx context.Context, topic string, payload []byte) error {
	l, err := a.connected()
	if err != nil {
		return err
	}
	ctx, span := a.startRequest(ctx, spanPublish, topic)
	err = l.publish(ctx, topic, payload)
	endSpan(span, err)
	return err
}

// Subscribe asks the mesh to deliver the Events whose topic matches pattern to the
// agent's EventHandler; "*" matches one token and a final ">" one or more
// ("build.*.done", "weather.>"). It returns once the subscription is live.
func (a *Agent) Subscribe(ctx context.Context, pattern string) error {
	o, err := a.outbound()
	if err != nil {
		return err
	}
	return o.subscribe(ctx, topicSubscribe, pattern)
}

// Unsubscribe ends a subscription made with Subscribe.
func (a *Agent) Unsubscribe(ctx context.Context, pattern string) error {
	o, err := a.outbound()
	if err != nil {
		return err
	}
	return o.subscribe(ctx, topicUnsubscribe, pattern)
}

// OpenStream opens a stream to another agent (by id) or a service (by name); data is the
// opening request the peer's stream handler receives. Read the peer's chunks with Recv.
func (a *Agent) OpenStream(ctx context.Context, to string, kind mxp.StreamKind, data []byte) (*ClientStream, error) {
	l, err := a.connected()
	if err != nil {
		return nil, err
	}
	target, err := resolveTarget(to)
	if err != nil {
		return nil, err
	}
	ctx, span := a.startRequest(ctx, "agent.stream", to)
	cs, err := l.openStream(ctx, target, kind, data)
	endSpan(span, err)
	return cs, err
}
