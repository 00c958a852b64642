package registry

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// storeError turns a store failure into a reply, counting and logging it.
func (s *Service) storeError(ctx context.Context, op string, err error) error {
	s.storeErrs.WithLabelValues(op).Inc()
	s.deps.Logger.ErrorContext(ctx, "store operation failed", "op", op, "err", err)
	return bus.Errorf(mxp.CodeStoreUnavailable, "registry store unavailable; retry")
}

func (s *Service) handleRegister(ctx context.Context, req service.Request) (any, error) {
	cfg := s.Config()
	r, err := mxp.DecodeRegisterRequest(req.Data)
	if err != nil {
		return nil, payloadError(err)
	}
	a, err := validateRegister(r, cfg.MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	owner, err := validOwner(req.Header)
	if err != nil {
		return nil, err
	}
	a.Owner = owner
	now := s.now()
	a.RegisteredAt, a.LastHeartbeat, a.ExpiresAt = now, now, now.Add(cfg.Lease)
	prev, err := s.store.Register(ctx, a)
	var held *NameHeldError
	if errors.As(err, &held) {
		s.conflicts.Inc()
		s.deps.Logger.InfoContext(ctx, "registration refused: name held by another identity",
			"agent_id", a.ID, "name", a.Name, "holder", held.Holder)
		if held.ByID {
			return nil, bus.Errorf(mxp.CodeConflict, "agent %s is registered by another identity while its lease lives", a.ID)
		}
		if held.Holder == "" {
			return nil, bus.Errorf(mxp.CodeConflict, "agent name %q is still claimed by another identity (name_claim_grace after its agents left)", a.Name)
		}
		return nil, bus.Errorf(mxp.CodeConflict, "agent name %q is held by another identity while its lease lives", a.Name)
	}
	if err != nil {
		return nil, s.storeError(ctx, "register", err)
	}
	msg := "registered"
	switch {
	case prev == nil || !prev.ExpiresAt.After(now):
		s.publish(ctx, bus.SubjectRegistryRegistered, "registered", a, now, 0)
	case !bytes.Equal(prev.descriptor(), a.descriptor()):
		msg = "updated"
		a.RegisteredAt = prev.RegisteredAt
		s.publish(ctx, bus.SubjectRegistryRegistered, "registered", a, now, 0)
	default:
		msg = "updated"
	}
	s.deps.Logger.DebugContext(ctx, "agent "+msg, "agent_id", a.ID, "name", a.Name)
	return mxp.RegisterResponse{Success: true, AgentID: r.ID, Message: msg,
		LeaseSeconds: cfg.Lease.Seconds(), HeartbeatSeconds: cfg.EffectiveHeartbeatInterval().Seconds()}, nil
}

// handleHeartbeat renews a lease and stores the lifecycle the heartbeat's metadata
// reports. It never publishes a registered event; a lifecycle event goes out when the
// report is news (Lifecycle.changedFrom).
func (s *Service) handleHeartbeat(ctx context.Context, req service.Request) (any, error) {
	cfg := s.Config()
	r, err := mxp.DecodeHeartbeatRequest(req.Data)
	if err != nil {
		return nil, payloadError(err)
	}
	id := r.AgentID.String()
	lc, err := validateHeartbeatMetadata(r.Metadata, cfg.MaxHeartbeatMetadataBytes)
	if err != nil {
		return nil, err
	}
	now := s.now()
	prev, err := s.store.Heartbeat(ctx, id, now, now.Add(cfg.Lease), lc)
	switch {
	case errors.Is(err, ErrNotFound):
		s.heartbeats.WithLabelValues("needs_register").Inc()
		return mxp.HeartbeatResponse{Success: false, NeedsRegister: true, AgentID: r.AgentID, Timestamp: now.UTC(),
			Message: "unknown agent or lease ended; register again"}, nil
	case err != nil:
		return nil, s.storeError(ctx, "heartbeat", err)
	}
	s.heartbeats.WithLabelValues("ok").Inc()
	if lc != nil && lc.changedFrom(prev) {
		s.publishLifecycle(ctx, id, prev, now)
	}
	return mxp.HeartbeatResponse{Success: true, AgentID: r.AgentID, Timestamp: now.UTC()}, nil
}

// publishLifecycle announces a changed lifecycle with the agent's current record. The
// heartbeat has already succeeded: a failed lookup is logged, not returned.
func (s *Service) publishLifecycle(ctx context.Context, id string, prev Lifecycle, now time.Time) {
	a, err := s.store.Get(ctx, id, now)
	if err != nil {
		if !errors.Is(err, ErrNotFound) { // gone since (deregistered): nothing to announce
			s.storeErrs.WithLabelValues("get").Inc()
			s.deps.Logger.WarnContext(ctx, "lifecycle event skipped: agent lookup failed", "agent_id", id, "err", err)
		}
		return
	}
	var previous *Lifecycle
	if prev.Known() {
		previous = &prev
	}
	s.publishEvent(ctx, bus.SubjectRegistryLifecycle, Event{Type: lifecycleEventType,
		Agent: a.Record(now, s.Config().EffectiveHeartbeatInterval()), Timestamp: now.UTC(), Previous: previous})
	s.deps.Logger.InfoContext(ctx, "agent lifecycle changed", "agent_id", id, "lifecycle", a.Lifecycle.State,
		"accepting", a.Lifecycle.AcceptsCalls(), "previous", prev.State)
}

func (s *Service) handleDeregister(ctx context.Context, req service.Request) (any, error) {
	r, err := mxp.DecodeDeregisterRequest(req.Data)
	if err != nil {
		return nil, payloadError(err)
	}
	id := r.AgentID.String()
	a, err := s.store.Deregister(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, bus.Errorf(mxp.CodeNotFound, "agent %s is not registered", id)
	case err != nil:
		return nil, s.storeError(ctx, "deregister", err)
	}
	now := s.now()
	s.publish(ctx, bus.SubjectRegistryDeregistered, "deregistered", a, now, 0)
	return mxp.DeregisterResponse{Success: true, AgentID: r.AgentID, Message: "deregistered"}, nil
}

func (s *Service) handleDiscover(ctx context.Context, req service.Request) (any, error) {
	var r mxp.DiscoverRequest
	if len(bytes.TrimSpace(req.Data)) > 0 {
		var err error
		if r, err = mxp.DecodeDiscoverRequest(req.Data); err != nil {
			return nil, payloadError(err)
		}
	}
	return s.discover(ctx, r)
}

// discover is shared by the bus endpoint and the HTTP API.
func (s *Service) discover(ctx context.Context, r mxp.DiscoverRequest) (mxp.DiscoverResponse, error) {
	cfg := s.Config()
	q, err := validateDiscover(r, cfg.DiscoverDefaultLimit, cfg.DiscoverMaxLimit)
	if err != nil {
		return mxp.DiscoverResponse{}, err
	}
	now := s.now()
	as, more, err := s.store.Discover(ctx, q, now)
	if err != nil {
		return mxp.DiscoverResponse{}, s.storeError(ctx, "discover", err)
	}
	resp := mxp.DiscoverResponse{Capability: r.Capability, Agents: make([]mxp.AgentRecord, len(as)), Count: len(as)}
	for i := range as {
		resp.Agents[i] = as[i].Record(now, cfg.EffectiveHeartbeatInterval())
	}
	if more && len(as) > 0 {
		resp.NextAfter = as[len(as)-1].ID
	}
	return resp, nil
}

// get is the HTTP API's single-agent lookup.
func (s *Service) get(ctx context.Context, rawID string) (mxp.AgentRecord, error) {
	id, err := ValidAgentID(rawID)
	if err != nil {
		return mxp.AgentRecord{}, err
	}
	now := s.now()
	a, err := s.store.Get(ctx, id, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return mxp.AgentRecord{}, bus.Errorf(mxp.CodeNotFound, "agent %s is not registered", id)
	case err != nil:
		return mxp.AgentRecord{}, s.storeError(ctx, "get", err)
	}
	return a.Record(now, s.Config().EffectiveHeartbeatInterval()), nil
}
