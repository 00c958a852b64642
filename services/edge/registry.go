package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// register routes an AgentRegister to the registry. The agent id must not be carried by
// another connection, here or on another edge (probed on the bus); the edge subscribes the
// agent's subjects before the registry hears of it, so that calls work as soon as the
// registration is answered.
// Contract: a fresh id is added to s.agents, s.order, e.agents and e.perSource together,
// unconfirmed, under e.mu then s.mu; it is confirmed (updateCallerLocked) when the registry
// accepts it and taken back with forget on any failure. Holds one in-flight slot until
// the registry answers.
func (s *session) register(f mxp.Frame, arrived time.Time) {
	req, err := mxp.DecodeRegisterRequest(f.Payload)
	if err != nil {
		// The code names the field at fault (invalid_name, invalid_capability, ...), as
		// the registry would: both check with the same functions of pkg/mxp.
		s.reject(f.MessageID, f.Type.String(), mxp.ErrorCodeFor(err), err.Error())
		return
	}
	if svc, ok := mxp.ServiceName(req.ID); ok {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeForbidden, "agent id "+req.ID.String()+" is reserved for the "+svc+" service")
		return
	}
	// The request goes to the registry from another goroutine, after Frame has returned and
	// the transport may have reused the frame's buffer (Handler.Frame): keep a copy.
	f.Payload = bytes.Clone(f.Payload)
	if !req.Address.IsValid() {
		// An agent reached through its edge connection may leave the address empty
		// (docs/protocol.md); the registry gets the address the connection comes from.
		req.Address = s.peer.RemoteAddr()
		if p, err := req.AppendPayload(nil); err == nil {
			f.Payload = p
		}
	}
	e := s.e
	e.mu.Lock()
	owner := e.agents[req.ID]
	fresh := owner == nil
	if owner != nil && owner != s {
		e.mu.Unlock()
		s.reject(f.MessageID, f.Type.String(), mxp.CodeForbidden, "agent "+req.ID.String()+" is registered by another connection")
		return
	}
	if fresh {
		lim := e.cfg.Load().Limits
		src := sourceOf(s.peer.RemoteAddr())
		var refused, reason string
		s.mu.Lock()
		switch {
		case len(s.agents) >= lim.MaxAgents:
			refused = fmt.Sprintf("a connection may register at most %d agents", lim.MaxAgents)
		case e.perSource[src] >= lim.MaxAgentsPerAddress:
			refused = fmt.Sprintf("at most %d agents may be registered from one source address", lim.MaxAgentsPerAddress)
			reason = dropAgentsPerAddress
		default:
			s.agents[req.ID] = &carried{since: time.Now(), src: src}
			s.order = append(s.order, req.ID)
		}
		s.mu.Unlock()
		if refused != "" {
			e.mu.Unlock()
			if reason != "" {
				e.m.dropped.WithLabelValues(reason).Inc()
			}
			s.reject(f.MessageID, f.Type.String(), mxp.CodeRateLimited, refused)
			return
		}
		e.agents[req.ID] = s
		e.perSource[src]++
	}
	e.mu.Unlock()
	if !s.acquire() {
		if fresh {
			s.forget(req.ID)
		}
		s.reject(f.MessageID, f.Type.String(), mxp.CodeRateLimited, "too many requests in flight on this connection")
		return
	}
	cfg := e.cfg.Load()
	deadline := arrived.Add(cfg.RegistryTimeout)
	go func() {
		defer s.release()
		msg := &nats.Msg{Subject: bus.SubjectRegistryRegister, Header: s.headers(&f, deadline, true), Data: f.Payload}
		span := s.startRequestSpan(&f, msg.Subject, msg.Header)
		if fresh {
			if code, text := s.claim(req.ID, deadline); code != "" {
				s.forget(req.ID)
				s.count(f.Type, dirIn, string(code))
				s.sendError(f.MessageID, f.TraceID, code, text)
				endSpan(span, code)
				return
			}
		}
		if key := s.peer.Identity(); key != "" {
			// The registry binds the name to the key the transport verified; a plaintext
			// registration carries no owner and cannot take a name a key holds.
			bus.SetOwnerKey(msg.Header, key)
		}
		s.sendAck(&f)
		ctx, cancel := context.WithDeadline(s.ctx, deadline)
		reply, err := e.nc.RequestMsgWithContext(ctx, msg)
		cancel()
		if s.ctx.Err() != nil {
			// The connection ended while the registry was answering: if it did register
			// the agent, take the registration back (close only saw it pending).
			if err == nil && bus.ReplyError(reply) == nil && fresh && e.ctx.Err() == nil {
				e.wg.Go(func() { e.deregister([]mxp.AgentID{req.ID}) })
			}
			endSpan(span, mxp.CodeUnavailable)
			return
		}
		ok := err == nil && bus.ReplyError(reply) == nil
		if ok {
			var rr mxp.RegisterResponse
			if json.Unmarshal(reply.Data, &rr) == nil && !rr.Success {
				ok = false
			}
		}
		if ok {
			s.mu.Lock()
			c := s.agents[req.ID]
			newly := c != nil && !c.confirmed
			if c != nil {
				c.confirmed = true
				s.updateCallerLocked()
			}
			s.mu.Unlock()
			if newly {
				e.m.agents.Inc()
			}
		} else if fresh {
			s.forget(req.ID)
		}
		endSpan(span, s.answerFromBus(&f, reply, err, msg.Subject, nil))
		e.m.route.WithLabelValues(f.Type.String()).Observe(time.Since(arrived).Seconds())
	}()
}

// claim makes sure no other edge carries id, then subscribes the agent's subjects. It
// returns an error code and text when the id is taken or the bus fails.
// Contract: sets the carried agent's sub, or unsubscribes at once when the agent left
// s.agents meanwhile (forget or close ran).
func (s *session) claim(id mxp.AgentID, deadline time.Time) (mxp.ErrorCode, string) {
	e := s.e
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	_, err := e.nc.RequestWithContext(ctx, bus.AgentSubject(id.String(), bus.AgentVerbProbe), nil)
	cancel()
	switch {
	case err == nil:
		return mxp.CodeForbidden, "agent " + id.String() + " is registered by a connection on another edge"
	case !errors.Is(err, nats.ErrNoResponders):
		code, text := busFailure(err, "the agent probe")
		return code, text
	}
	sub, err := e.nc.ChanSubscribe(bus.AgentSubject(id.String(), "*"), e.agentMsgs)
	if err != nil {
		return mxp.CodeUnavailable, "cannot subscribe the agent's subject: " + err.Error()
	}
	s.mu.Lock()
	c := s.agents[id]
	if c != nil {
		c.sub = sub
	}
	s.mu.Unlock()
	if c == nil { // deregistered or the session closed meanwhile
		_ = sub.Unsubscribe()
		return mxp.CodeUnavailable, "the registration was withdrawn"
	}
	return "", ""
}

// sourceOf is the source a registration is charged to (Limits.MaxAgentsPerAddress): the
// peer's IP address; an IPv6 address by its /64, the block one host usually holds.
func sourceOf(ap netip.AddrPort) netip.Addr {
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// releaseSourceLocked gives back the registration charged to src when a carried agent
// leaves its session. Contract: e.mu held; called once per carried agent removed (forget,
// close), each having been charged once by register.
func (e *Edge) releaseSourceLocked(src netip.Addr) {
	if n := e.perSource[src] - 1; n > 0 {
		e.perSource[src] = n
	} else {
		delete(e.perSource, src)
	}
}

// forget drops an agent from the session and the edge (no registry call).
// Contract: undoes register for id (s.agents, s.order, e.agents when this session owns it,
// e.perSource, the subscription, the agents gauge when confirmed); safe when id is gone.
func (s *session) forget(id mxp.AgentID) {
	e := s.e
	e.mu.Lock()
	if e.agents[id] == s {
		delete(e.agents, id)
	}
	s.mu.Lock()
	c := s.agents[id]
	if c != nil {
		e.releaseSourceLocked(c.src)
	}
	delete(s.agents, id)
	for i, v := range s.order {
		if v == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	s.updateCallerLocked()
	s.mu.Unlock()
	e.mu.Unlock()
	if c != nil {
		if c.sub != nil {
			_ = c.sub.Unsubscribe()
		}
		if c.confirmed {
			e.m.agents.Dec()
		}
	}
}

// owns reports whether the session carries agent id with a confirmed registration.
func (s *session) owns(id mxp.AgentID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.agents[id]
	return c != nil && c.confirmed
}

// heartbeat routes an AgentHeartbeat to the registry, or, with FlagFinal, deregisters.
// Only the connection that registered the agent may do either.
func (s *session) heartbeat(f mxp.Frame, arrived time.Time) {
	req, err := mxp.DecodeHeartbeatRequest(f.Payload)
	if err != nil {
		// The code names the field at fault (invalid_name, invalid_capability, ...), as
		// the registry would: both check with the same functions of pkg/mxp.
		s.reject(f.MessageID, f.Type.String(), mxp.ErrorCodeFor(err), err.Error())
		return
	}
	if !s.owns(req.AgentID) {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeForbidden, "agent "+req.AgentID.String()+" is not registered by this connection")
		return
	}
	if !s.acquire() {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeRateLimited, "too many requests in flight on this connection")
		return
	}
	deadline := arrived.Add(s.e.cfg.Load().RegistryTimeout)
	subject := bus.SubjectRegistryHeartbeat
	final := f.Flags.Has(mxp.FlagFinal)
	if final {
		subject = bus.SubjectRegistryDeregister
	}
	msg := &nats.Msg{Subject: subject, Header: s.headers(&f, deadline, true), Data: f.Payload}
	var after func()
	if final {
		after = func() { s.forget(req.AgentID) }
	}
	s.request(&f, msg, deadline, arrived, after)
}

// discover routes an AgentDiscover to the registry.
func (s *session) discover(f mxp.Frame, arrived time.Time) {
	if _, err := mxp.DecodeDiscoverRequest(f.Payload); err != nil {
		// The code names the field at fault (invalid_name, invalid_capability, ...), as
		// the registry would: both check with the same functions of pkg/mxp.
		s.reject(f.MessageID, f.Type.String(), mxp.ErrorCodeFor(err), err.Error())
		return
	}
	if !s.acquire() {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeRateLimited, "too many requests in flight on this connection")
		return
	}
	deadline := arrived.Add(s.e.cfg.Load().RegistryTimeout)
	msg := &nats.Msg{Subject: bus.SubjectRegistryDiscover, Header: s.headers(&f, deadline, true), Data: f.Payload}
	s.request(&f, msg, deadline, arrived, nil)
}

// deregister tells the registry that agents whose connection ended are gone.
func (e *Edge) deregister(ids []mxp.AgentID) {
	timeout := e.cfg.Load().RegistryTimeout
	for _, id := range ids {
		body, _ := json.Marshal(mxp.HeartbeatRequest{AgentID: id})
		msg := &nats.Msg{Subject: bus.SubjectRegistryDeregister, Header: nats.Header{}, Data: body}
		bus.SetAgentID(msg.Header, id.String())
		bus.SetDeadline(msg.Header, time.Now().Add(timeout))
		if _, err := e.nc.RequestMsg(msg, timeout); err != nil {
			if e.ctx.Err() != nil { // shutting down with the registry: its store decides
				e.log.Debug("deregistering an agent at shutdown failed", "agent_id", id.String(), "err", err)
				continue
			}
			e.log.Warn("deregistering an agent of a closed connection failed; its lease will expire",
				"agent_id", id.String(), "err", err)
		}
	}
}
