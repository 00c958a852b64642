package edge

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// The reserved topics of the subscription convention (docs/edge.md, "Events"). An Event
// on TopicSubscribe or TopicUnsubscribe is handled by the edge, not published: its data
// is a topic pattern, a topic whose tokens may also be "*" (one token) or, last, ">" (one
// or more tokens). Set FlagRequiresAck to learn when the subscription is live.
const (
	TopicSubscribe   = "_mxp.subscribe"
	TopicUnsubscribe = "_mxp.unsubscribe"
	reservedPrefix   = "_mxp."
	eventQueue       = 1024 // events waiting for one connection before the bus drops (slow consumer)
)

// event publishes an Event on its topic, or handles a (un)subscription.
func (s *session) event(f mxp.Frame, arrived time.Time) {
	ev, err := mxp.DecodeEvent(f.Payload)
	if err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload, err.Error())
		return
	}
	switch {
	case ev.Topic == TopicSubscribe:
		s.subscribe(f, string(bytes.TrimSpace(ev.Data)))
		return
	case ev.Topic == TopicUnsubscribe:
		s.unsubscribe(f, string(bytes.TrimSpace(ev.Data)))
		return
	case strings.HasPrefix(ev.Topic, reservedPrefix):
		s.reject(f.MessageID, f.Type.String(), mxp.CodeForbidden, "topics under "+reservedPrefix+" are reserved")
		return
	}
	msg := &nats.Msg{Subject: bus.EventSubject(ev.Topic), Header: s.headers(&f, time.Time{}, true), Data: ev.Data}
	msg.Header.Set(bus.HeaderEventTopic, ev.Topic)
	span := s.startRequestSpan(&f, msg.Subject, msg.Header)
	if err := s.e.nc.PublishMsg(msg); err != nil {
		code, text := busFailure(err, msg.Subject)
		s.reject(f.MessageID, f.Type.String(), code, text)
		endSpan(span, code)
		return
	}
	endSpan(span, "")
	s.count(f.Type, dirIn, outcomeOK)
	s.sendAck(&f)
	s.e.m.route.WithLabelValues(f.Type.String()).Observe(time.Since(arrived).Seconds())
}

// CheckTopicPattern validates a subscription pattern: dot-separated tokens of letters,
// digits, '_' and '-', or "*", or a final ">".
func CheckTopicPattern(p string) error {
	if p == "" || len(p) > mxp.MaxTopicLen {
		return fmt.Errorf("topic pattern must be 1 to %d bytes", mxp.MaxTopicLen)
	}
	toks := strings.Split(p, ".")
	for i, tok := range toks {
		if tok == "*" || (tok == ">" && i == len(toks)-1) {
			continue
		}
		if err := mxp.CheckTopic(tok); err != nil {
			return fmt.Errorf("topic pattern %q: token %q: letters, digits, '_', '-', or '*', or a final '>'", p, tok)
		}
	}
	if strings.HasPrefix(p, reservedPrefix) {
		return fmt.Errorf("topic pattern %q: topics under %s are reserved", p, reservedPrefix)
	}
	return nil
}

// subscribe adds a topic subscription for pattern and acknowledges f once the bus has it.
// Contract: adds to s.subs under s.mu (and the subscriptions gauge), at most
// Limits.MaxSubscriptions; starts the session's event goroutine with the first.
func (s *session) subscribe(f mxp.Frame, pattern string) {
	if err := CheckTopicPattern(pattern); err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeInvalidPayload, err.Error())
		return
	}
	e := s.e
	s.mu.Lock()
	if _, ok := s.subs[pattern]; ok {
		s.mu.Unlock()
		s.count(f.Type, dirIn, outcomeOK)
		s.sendAck(&f)
		return
	}
	if len(s.subs) >= e.cfg.Load().Limits.MaxSubscriptions {
		s.mu.Unlock()
		s.reject(f.MessageID, f.Type.String(), mxp.CodeRateLimited,
			fmt.Sprintf("a connection may hold at most %d subscriptions", len(s.subs)))
		return
	}
	if s.events == nil {
		s.events = make(chan *nats.Msg, eventQueue)
		e.wg.Go(s.deliverEvents)
	}
	sub, err := e.nc.ChanSubscribe(bus.EventSubject(pattern), s.events)
	if err == nil {
		s.subs[pattern] = sub
	}
	s.mu.Unlock()
	if err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeUnavailable, "cannot subscribe: "+err.Error())
		return
	}
	e.m.subscriptions.Inc()
	// Make the subscription live on the server before acknowledging it.
	if err := e.nc.FlushTimeout(e.cfg.Load().RegistryTimeout); err != nil {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeUnavailable, "subscription not confirmed by the bus: "+err.Error())
		return
	}
	s.count(f.Type, dirIn, outcomeOK)
	s.sendAck(&f)
}

// unsubscribe ends the subscription to pattern. Contract: removes from s.subs under s.mu,
// with the subscriptions gauge; not_found when there is none.
func (s *session) unsubscribe(f mxp.Frame, pattern string) {
	s.mu.Lock()
	sub, ok := s.subs[pattern]
	delete(s.subs, pattern)
	s.mu.Unlock()
	if !ok {
		s.reject(f.MessageID, f.Type.String(), mxp.CodeNotFound, "no subscription to "+pattern)
		return
	}
	_ = sub.Unsubscribe()
	s.e.m.subscriptions.Dec()
	s.count(f.Type, dirIn, outcomeOK)
	s.sendAck(&f)
}

// deliverEvents sends the events of the session's subscriptions to its peer, in order.
func (s *session) deliverEvents() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case msg := <-s.events:
			topic := bus.EventTopic(msg.Subject)
			traceID, _, _ := bus.TraceID(msg.Header)
			ev := mxp.EventPayload{Topic: topic, Data: msg.Data}
			payload, err := ev.AppendPayload(nil)
			if err != nil {
				continue // a subject that is not a valid topic was published by a non-edge client
			}
			span := s.startDeliverySpan(msg.Header, mxp.AgentID{}, trace.SpanKindProducer)
			id := deliveryID(span, traceID) // events are not answered: any id will do but 0
			if id == 0 {
				id = s.nextID.Add(1)
			}
			err = s.send(&mxp.Frame{Type: mxp.TypeEvent, MessageID: id, TraceID: traceID, Payload: payload})
			var code mxp.ErrorCode
			if err != nil {
				code = mxp.CodeUnavailable
			}
			endSpan(span, code)
		}
	}
}
