package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// DefaultHostedResolveTTL is how long Hosted keeps the answer of a registry lookup (which
// agents of a name serve a model). A failure to reach a looked-up agent forgets it at once.
const DefaultHostedResolveTTL = 2 * time.Second

// Hosted is the connector to models hosted by agents on the mesh (the "mxp" provider
// kind; the contract is in pkg/api/inference, hosted.go). Its model names are
// "<agent-name>/<model>" (the service strips the "mxp/" of the name callers use). For each
// request it looks the agent up in the registry by exact name and by the capability
// "model.<model>" (an answer kept for the TTL, DefaultHostedResolveTTL), then reaches it through the edge that
// carries it: a stream (Stream) or, for a caller that collects the answer anyway, one Call
// (Complete). The service wraps it with the same breaker, retries, fallbacks and metrics
// as every provider; errors are typed here:
//
//   - a malformed name: invalid_request;
//   - no agent of that name serves the model (or the agent says not_found): model_not_found;
//   - the agent is registered but no edge carries it (unreachable), or it is suspended,
//     draining or the bus failed: unavailable (retryable; the lookup is forgotten);
//   - the agent's own errors keep their inference code (rate_limited, context_overflow,
//     ...); its internal failures are provider_error.
type Hosted struct {
	nc  *nats.Conn
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[string]hostedEntry // by "<agent>/<model>"
	next  atomic.Uint32          // spreads requests over the agents of one name
}

type hostedEntry struct {
	ids   []string
	until time.Time
}

// maxHostedCache bounds the lookups Hosted keeps; model names come from callers.
const maxHostedCache = 4096

// NewHosted returns the connector, reaching the registry and agents over nc (nil: every
// request fails with unavailable). ttl <= 0 means DefaultHostedResolveTTL.
func NewHosted(nc *nats.Conn, ttl time.Duration) *Hosted {
	if ttl <= 0 {
		ttl = DefaultHostedResolveTTL
	}
	return &Hosted{nc: nc, ttl: ttl, now: time.Now, cache: map[string]hostedEntry{}}
}

// Name implements ModelAdapter.
func (h *Hosted) Name() string { return "mxp" }

// target parses req's model, finds an agent serving it and encodes the request the agent
// receives (the model's own name in Model).
func (h *Hosted) target(ctx context.Context, req *api.Request) (id, agentName string, body []byte, err error) {
	agentName, model, err := api.ParseHostedModel(req.Model)
	if err == nil {
		err = mxp.CheckName(agentName)
	}
	if err == nil {
		err = mxp.CheckCapability(api.HostedCapability(model))
	}
	if err != nil {
		return "", "", nil, &provider.Error{Code: provider.CodeInvalidRequest, Provider: h.Name(),
			Message: fmt.Sprintf("hosted model %.80q: %v", req.Model, err)}
	}
	if h.nc == nil {
		return "", "", nil, &provider.Error{Code: provider.CodeUnavailable, Provider: h.Name(), Message: "the inference service has no bus connection to reach agents"}
	}
	id, err = h.resolve(ctx, agentName, model)
	if err != nil {
		return "", "", nil, err
	}
	out := api.ChatRequest{Request: *req}
	out.Model = model
	if body, err = json.Marshal(&out); err != nil {
		return "", "", nil, &provider.Error{Code: provider.CodeInvalidRequest, Provider: h.Name(), Message: "encoding the request: " + err.Error()}
	}
	return id, agentName, body, nil
}

// resolve returns the id of an agent named agentName that serves model.
func (h *Hosted) resolve(ctx context.Context, agentName, model string) (string, error) {
	key := agentName + "/" + model
	h.mu.Lock()
	e, ok := h.cache[key]
	h.mu.Unlock()
	if !ok || h.now().After(e.until) {
		ids, err := h.lookup(ctx, agentName, model)
		if err != nil {
			return "", err
		}
		e = hostedEntry{ids: ids, until: h.now().Add(h.ttl)}
		h.mu.Lock()
		if len(h.cache) >= maxHostedCache {
			clear(h.cache)
		}
		h.cache[key] = e
		h.mu.Unlock()
	}
	return e.ids[int(h.next.Add(1))%len(e.ids)], nil
}

// lookup asks the registry for the online agents named agentName with the model's
// capability, those taking calls first.
func (h *Hosted) lookup(ctx context.Context, agentName, model string) ([]string, error) {
	q := mxp.DiscoverRequest{Name: agentName, Capabilities: []string{api.HostedCapability(model)}}
	body, err := json.Marshal(&q)
	if err != nil {
		return nil, &provider.Error{Code: provider.CodeInvalidRequest, Provider: h.Name(), Message: err.Error()}
	}
	msg := &nats.Msg{Subject: bus.SubjectRegistryDiscover, Header: nats.Header{}, Data: body}
	if dl, ok := ctx.Deadline(); ok {
		bus.SetDeadline(msg.Header, dl)
	}
	reply, err := h.nc.RequestMsgWithContext(ctx, msg)
	if err == nil {
		err = bus.ReplyError(reply)
	}
	if err != nil { // the name and capability are valid: a refusal is the registry's trouble
		if ctx.Err() != nil {
			return nil, provider.AsError(ctx.Err())
		}
		if errors.Is(err, nats.ErrNoResponders) {
			err = errors.New("no registry answers")
		}
		return nil, &provider.Error{Code: provider.CodeUnavailable, Provider: h.Name(), Retryable: true,
			Message: "looking up agent " + agentName + " in the registry: " + err.Error(), Err: err}
	}
	resp, err := mxp.DecodeDiscoverResponse(reply.Data)
	if err != nil {
		return nil, &provider.Error{Code: provider.CodeUnavailable, Provider: h.Name(), Retryable: true,
			Message: "the registry's answer is unreadable: " + err.Error()}
	}
	var accepting, other []string
	for _, r := range resp.Agents {
		if r.Name != agentName || (r.Status != "" && r.Status != mxp.StatusOnline) {
			continue
		}
		if r.Accepting == nil || *r.Accepting {
			accepting = append(accepting, r.ID.String())
		} else {
			other = append(other, r.ID.String())
		}
	}
	if ids := append(accepting, other...); len(ids) > 0 {
		if len(accepting) > 0 {
			return accepting, nil // the others are tried once these are forgotten
		}
		return ids, nil
	}
	return nil, &provider.Error{Code: provider.CodeModelNotFound, Provider: h.Name(), Model: agentName + "/" + model,
		Message: fmt.Sprintf("no online agent named %q serves model %q (capability %s)", agentName, model, api.HostedCapability(model))}
}

// Served lists the models online agents host, as callers name them
// ("mxp/<agent-name>/<model>"), sorted: one registry query for every agent (at most
// mxp.MaxDiscoverLimit of them), keeping the capabilities "model.<model>".
func (h *Hosted) Served(ctx context.Context) ([]string, error) {
	if h.nc == nil {
		return nil, nil
	}
	body, _ := json.Marshal(&mxp.DiscoverRequest{Limit: mxp.MaxDiscoverLimit})
	reply, err := h.nc.RequestWithContext(ctx, bus.SubjectRegistryDiscover, body)
	if err == nil {
		err = bus.ReplyError(reply)
	}
	if err != nil {
		return nil, err
	}
	resp, err := mxp.DecodeDiscoverResponse(reply.Data)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range resp.Agents {
		if r.Status != "" && r.Status != mxp.StatusOnline {
			continue
		}
		for _, c := range r.Capabilities {
			model, ok := strings.CutPrefix(c, api.HostedCapabilityPrefix)
			if name := api.HostedPrefix + r.Name + "/" + model; ok && model != "" && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// forget drops the lookup of agentName/model, so the next request asks the registry.
func (h *Hosted) forget(agentName, model string) {
	h.mu.Lock()
	delete(h.cache, agentName+"/"+model)
	h.mu.Unlock()
}

// headers are the bus headers of a request to an agent: ctx's deadline and trace.
func headers(ctx context.Context) nats.Header {
	hd := nats.Header{}
	if dl, ok := ctx.Deadline(); ok {
		bus.SetDeadline(hd, dl)
	}
	tracing.Inject(ctx, hd)
	return hd
}

// fail types err of a request to agent id and forgets the lookup when the agent was not
// there to answer.
func (h *Hosted) fail(err error, req *api.Request, agentName string) *provider.Error {
	_, model, _ := api.ParseHostedModel(req.Model)
	e := hostedError(err, agentName, model)
	if e.Code == provider.CodeUnavailable || e.Code == provider.CodeModelNotFound {
		h.forget(agentName, model)
	}
	return e
}

// Stream opens a stream to the agent and returns once its edge accepted it.
func (h *Hosted) Stream(ctx context.Context, req *api.Request) (api.Stream, error) {
	id, agentName, body, err := h.target(ctx, req)
	if err != nil {
		return nil, err
	}
	as, err := bus.OpenAgentStream(ctx, h.nc, id, mxp.StreamKindJSON, body, headers(ctx))
	if err != nil {
		return nil, h.fail(err, req, agentName)
	}
	return &hostedStream{h: h, ctx: ctx, as: as, req: req, agent: agentName}, nil
}

// Complete asks the agent for the whole answer in one Call: a caller that collects the
// answer anyway (a non-streamed chat) saves the stream's open and credit traffic.
func (h *Hosted) Complete(ctx context.Context, req *api.Request) (*api.Response, error) {
	id, agentName, body, err := h.target(ctx, req)
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: bus.AgentSubject(id, bus.AgentVerbCall), Header: headers(ctx), Data: body}
	reply, err := h.nc.RequestMsgWithContext(ctx, msg)
	if err == nil {
		err = bus.ReplyError(reply)
	}
	if err != nil {
		return nil, h.fail(bus.AgentError(err, id), req, agentName)
	}
	var resp api.ChatResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, &provider.Error{Code: provider.CodeProviderError, Provider: h.Name(), Retryable: true,
			Message: fmt.Sprintf("agent %s answered with no ChatResponse: %.64q", agentName, reply.Data)}
	}
	return &resp.Response, nil
}

// hostedStream is a model's answer streaming from an agent.
type hostedStream struct {
	h     *Hosted
	ctx   context.Context
	as    *bus.AgentStream
	req   *api.Request
	agent string
}

func (s *hostedStream) Recv() (api.Chunk, error) {
	b, err := s.as.Recv(s.ctx)
	if errors.Is(err, io.EOF) {
		return api.Chunk{}, io.EOF
	}
	if err != nil {
		if s.ctx.Err() != nil {
			return api.Chunk{}, provider.AsError(s.ctx.Err())
		}
		return api.Chunk{}, s.h.fail(err, s.req, s.agent)
	}
	var c api.Chunk
	if err := json.Unmarshal(b, &c); err != nil {
		return api.Chunk{}, &provider.Error{Code: provider.CodeProviderError, Provider: s.h.Name(), Retryable: true,
			Message: fmt.Sprintf("agent %s sent a chunk that is not a JSON Chunk: %.64q", s.agent, b)}
	}
	return c, nil
}

// Buffered reports whether a chunk or the end is already here.
func (s *hostedStream) Buffered() bool { return s.as.Buffered() }

func (s *hostedStream) Close() error { return s.as.Close() }

// hostedError maps an agent's (or its edge's) error to the service's codes: the inference
// codes pass as they are; the mesh's say what they mean for a model (unreachable: the agent
// is registered but gone, unavailable; not_found: model_not_found; a bad payload or
// argument: invalid_request; anything else the agent failed with: provider_error).
func hostedError(err error, agentName, model string) *provider.Error {
	var e *provider.Error
	if errors.As(err, &e) {
		return e
	}
	code, msg := mxp.ErrorCodeFor(err), err.Error()
	var re *mxp.RemoteError
	if errors.As(err, &re) {
		msg = re.Message
	}
	out := &provider.Error{Code: code, Provider: "mxp", Model: agentName + "/" + model, Message: "agent " + agentName + ": " + msg, Err: err}
	switch code {
	case provider.CodeInvalidRequest, provider.CodeUnauthenticated, provider.CodePermissionDenied, provider.CodeContextOverflow,
		provider.CodeContentFiltered, provider.CodeModelNotFound, provider.CodeCanceled:
	case provider.CodeRateLimited, provider.CodeOverloaded, provider.CodeProviderError, provider.CodeTimeout, provider.CodeUnavailable:
		out.Retryable = true
	case mxp.CodeNotFound:
		out.Code = provider.CodeModelNotFound
	case mxp.CodeUnreachable:
		out.Code, out.Retryable = provider.CodeUnavailable, true
		out.Message = "agent " + agentName + " is registered but not reachable: " + msg
	case mxp.CodeInvalidPayload, mxp.CodeInvalidArgument, mxp.CodeTooLarge:
		out.Code = provider.CodeInvalidRequest
	case mxp.CodeForbidden:
		out.Code = provider.CodePermissionDenied
	default: // internal, a panic in the agent's model, codes we do not know
		out.Code, out.Retryable = provider.CodeProviderError, true
	}
	return out
}
