package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Serving models to the mesh. An agent that serves a model under a name is reachable as
// the model "mxp/<agent-name>/<name>" through the mesh's inference service, which routes
// to it with the same breaker, retries, fallbacks and metrics as any provider
// (docs/inference.md, models hosted by agents). The contract is in pkg/api/inference
// (hosted.go): the capability "model.<name>", a Call answered with a ChatResponse, a
// stream answered chunk by chunk.

// ChatStreamerFunc adapts a function to ChatStreamer (a model in the agent's own code).
type ChatStreamerFunc func(ctx context.Context, req *ChatRequest) (Stream, error)

// ChatStream calls f.
func (f ChatStreamerFunc) ChatStream(ctx context.Context, req *ChatRequest) (Stream, error) {
	return f(ctx, req)
}

// Streaming serves a ChatModel (a model that answers whole, e.g. a ChatModelFunc) as a
// ChatStreamer: its answer is streamed as one piece (Response.Chunks).
func Streaming(m ChatModel) ChatStreamer { return wholeModel{m} }

type wholeModel struct{ m ChatModel }

func (w wholeModel) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	return w.m.Chat(ctx, req)
}

func (w wholeModel) ChatStream(ctx context.Context, req *ChatRequest) (Stream, error) {
	resp, err := w.m.Chat(ctx, req)
	if err != nil {
		return nil, err
	}
	return &chunkSlice{chunks: resp.Chunks()}, nil
}

// chunkSlice is a stream of chunks already in hand.
type chunkSlice struct{ chunks []Chunk }

func (s *chunkSlice) Recv() (Chunk, error) {
	if len(s.chunks) == 0 {
		return Chunk{}, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *chunkSlice) Close() error { return nil }

// ModelHost serves models to the mesh from one agent: its HandleCall answers a Call whose
// data is a ChatRequest with a ChatResponse, its HandleStream answers a stream opened with
// a ChatRequest with the model's chunks, each routed by the request's model name. Install
// it on an agent, or use ServeModel for one model. It is safe for concurrent use.
type ModelHost struct {
	mu     sync.RWMutex
	models map[string]ChatStreamer
}

// NewModelHost returns a host serving no model yet.
func NewModelHost() *ModelHost { return &ModelHost{models: map[string]ChatStreamer{}} }

// Add serves m under name, any name whose capability "model.<name>" is valid
// (mxp.CheckCapability: at most 128 bytes in all, no white space or control character;
// callers write it after "mxp/<agent>/"). A ChatStreamer that is also a ChatModel
// (AdapterModel, Streaming) answers Calls with its Chat; any other is streamed and
// collected. Adding a name again replaces its model.
func (h *ModelHost) Add(name string, m ChatStreamer) error {
	if name == "" {
		return agent.Errorf(agent.CodeInvalidArgument, "llm: serving a model: the name is empty")
	}
	if err := mxp.CheckCapability(inference.HostedCapability(name)); err != nil {
		return agent.Errorf(agent.CodeInvalidArgument, "llm: serving model %.40q: %w", name, err)
	}
	if m == nil {
		return agent.Errorf(agent.CodeInvalidArgument, "llm: serving model %q: the model is nil", name)
	}
	h.mu.Lock()
	h.models[name] = m
	h.mu.Unlock()
	return nil
}

// Capabilities are the capabilities the host's models are discovered by:
// "model.<name>" each, sorted.
func (h *ModelHost) Capabilities() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.models))
	for name := range h.models {
		out = append(out, inference.HostedCapability(name))
	}
	sort.Strings(out)
	return out
}

// Install makes a serve the host's models: it sets a's Call and stream handlers (so a
// serves nothing else through them; route to HandleCall and HandleStream yourself to
// combine) and advertises Capabilities. Call it before a runs; models added later are
// served but advertised only by calling a.Advertise(h.Capabilities()...).
//
// The error is agent.Advertise's: more than mxp.MaxCapabilities capabilities in all (the
// handlers are set; the models are served to callers that know them but not advertised).
func (h *ModelHost) Install(a *agent.Agent) error {
	a.HandleCall(h.HandleCall)
	a.HandleStream(h.HandleStream)
	return a.Advertise(h.Capabilities()...)
}

// ServeModel makes a serve m as the model name on the mesh ("mxp/<a's name>/<name>"
// through the inference service): a ModelHost with this one model, installed on a.
func ServeModel(a *agent.Agent, name string, m ChatStreamer) (*ModelHost, error) {
	h := NewModelHost()
	if err := h.Add(name, m); err != nil {
		return nil, err
	}
	if err := h.Install(a); err != nil {
		return nil, err
	}
	return h, nil
}

// request decodes a ChatRequest and finds its model.
func (h *ModelHost) request(payload []byte) (*ChatRequest, ChatStreamer, error) {
	var req ChatRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, nil, agent.Errorf(mxp.CodeInvalidRequest, "the request is not a ChatRequest: %v", err)
	}
	if len(req.Messages) == 0 {
		return nil, nil, agent.Errorf(mxp.CodeInvalidRequest, "messages: at least one message is required")
	}
	h.mu.RLock()
	m, ok := h.models[req.Model]
	h.mu.RUnlock()
	if !ok {
		return nil, nil, agent.Errorf(agent.CodeNotFound, "this agent serves no model %q", req.Model)
	}
	return &req, m, nil
}

// HandleCall is an agent.CallHandler: the payload is a ChatRequest, the answer the
// model's ChatResponse; errors carry the model's code (see codedError).
func (h *ModelHost) HandleCall(ctx context.Context, payload []byte) ([]byte, error) {
	req, m, err := h.request(payload)
	if err != nil {
		return nil, err
	}
	var resp *ChatResponse
	if cm, ok := m.(ChatModel); ok {
		resp, err = cm.Chat(ctx, req)
	} else {
		var s Stream
		if s, err = m.ChatStream(ctx, req); err == nil {
			resp, err = CollectStream(s)
		}
	}
	if err != nil {
		return nil, codedError(ctx, err)
	}
	if resp.Model == "" {
		resp.Model = req.Model
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, agent.Errorf(agent.CodeInternal, "encoding the response: %v", err)
	}
	return out, nil
}

// HandleStream is an agent.StreamHandler: the open's data is a ChatRequest, each chunk
// of the model's answer is sent as one JSON Chunk, and returning ends the stream (cleanly,
// or with the model's error and its code). The peer sends nothing; its close (or its
// going away) cancels the model's context.
func (h *ModelHost) HandleStream(ctx context.Context, s *agent.Stream) error {
	req, m, err := h.request(s.Request())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the handler's return closes s's input, which ends this Recv
		_, _ = s.Recv(ctx)
		cancel()
	}()
	st, err := m.ChatStream(ctx, req)
	if err != nil {
		return codedError(ctx, err)
	}
	defer st.Close()
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return codedError(ctx, err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			return agent.Errorf(agent.CodeInternal, "encoding a chunk: %v", err)
		}
		if err := s.Send(ctx, b); err != nil {
			return codedError(ctx, err)
		}
	}
}

// codedError is the error a hosted model's failure is sent as: an *agent.Error keeps its
// code, an inference.CodedError (a provider adapter's error) sends its inference code,
// the context's end is canceled or timeout, anything else internal.
func codedError(ctx context.Context, err error) error {
	var (
		ae *agent.Error
		ce inference.CodedError
	)
	switch {
	case errors.As(err, &ae) && ae.Code != "":
		return ae
	case errors.As(err, &ce) && ce.InferenceCode() != "":
		return &agent.Error{Code: agent.Code(ce.InferenceCode()), Message: ce.Error(), Err: err}
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return &agent.Error{Code: agent.CodeOf(ctx.Err()), Message: fmt.Sprintf("model stopped: %v", err), Err: err}
	}
	return agent.AsError(err)
}
