package inference

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/resilience"
	"github.com/mxp-mesh/mesh/services/inference/provider"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The chat request and response are the inference wire contract, defined once in
// pkg/api/inference. These aliases are a deliberate compatibility shim: they are the
// names of the service's in-process Go API (Service.Chat, Service.ChatStream, used by
// embedders and the SDK's AdapterModel callers), kept so those callers need not import the
// contract package under a second name. The provider package uses the contract's own names.
type (
	// ChatRequest is a chat call as the service's APIs take it.
	ChatRequest = api.ChatRequest
	// ChatResponse is a collected result.
	ChatResponse = api.ChatResponse
	// StreamSummary is the terminal message of a successful bus stream.
	StreamSummary = api.StreamSummary
)

// Context budgeting modes (ChatRequest.ContextBudget).
const (
	BudgetOff       = api.BudgetOff
	BudgetDrop      = api.BudgetDrop
	BudgetSummarize = api.BudgetSummarize
)

var (
	errFirstTokenTimeout = errors.New("first token timeout")
	errResponseTimeout   = errors.New("response timeout")
	errClosedByCaller    = errors.New("stream closed by the caller")
)

func validate(req *ChatRequest) error {
	if len(req.Messages) == 0 {
		return provider.Errorf(provider.CodeInvalidRequest, "messages: at least one message is required")
	}
	for i, m := range req.Messages {
		switch m.Role {
		case api.RoleSystem, api.RoleUser, api.RoleAssistant:
		case api.RoleTool:
			if m.ToolCallID == "" {
				return provider.Errorf(provider.CodeInvalidRequest, "messages[%d]: a tool message needs tool_call_id", i)
			}
		default:
			return provider.Errorf(provider.CodeInvalidRequest, "messages[%d]: unknown role %q", i, m.Role)
		}
	}
	if req.MaxTokens < 0 {
		return provider.Errorf(provider.CodeInvalidRequest, "max_tokens must not be negative")
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		return provider.Errorf(provider.CodeInvalidRequest, "temperature %v is outside [0, 2]", *t)
	}
	for i, t := range req.Tools {
		if t.Name == "" {
			return provider.Errorf(provider.CodeInvalidRequest, "tools[%d]: name is required", i)
		}
	}
	switch req.ContextBudget {
	case BudgetOff, BudgetDrop, BudgetSummarize:
	default:
		return provider.Errorf(provider.CodeInvalidRequest, "context_budget %q: want drop or summarize", req.ContextBudget)
	}
	if req.TimeoutMs < 0 || req.FirstTokenTimeoutMs < 0 {
		return provider.Errorf(provider.CodeInvalidRequest, "timeouts must not be negative")
	}
	return nil
}

// fallbackEligible reports whether another model may succeed where this one failed.
// Errors in the request itself would fail everywhere.
func fallbackEligible(err error) bool {
	switch provider.CodeOf(err) {
	case provider.CodeInvalidRequest, provider.CodeContextOverflow, provider.CodeContentFiltered, provider.CodeCanceled:
		return false
	}
	return true
}

// Chat runs a request and collects the whole result. A provider that can answer whole
// (provider.Completer: a model hosted by an agent) is asked so, in one exchange.
func (s *Service) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	st, err := s.stream(ctx, req, true)
	if err != nil {
		return nil, err
	}
	resp, err := provider.Collect(st)
	if err != nil {
		return nil, err
	}
	resp.Usage = st.Usage()
	return &ChatResponse{Response: *resp, Model: st.Model, Provider: st.Provider}, nil
}

// ChatStream is Stream behind the wire contract's interface, so that the service in the
// same process is a model the SDK streams from (pkg/agent/llm's ChatStreamer) without the
// SDK importing this package. It never returns a nil *Stream inside a non-nil interface.
func (s *Service) ChatStream(ctx context.Context, req *ChatRequest) (api.Stream, error) {
	st, err := s.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Stream starts a request and returns once the first chunk arrived (so retries and
// fallbacks are over). The caller must Close the stream.
func (s *Service) Stream(ctx context.Context, req *ChatRequest) (*Stream, error) {
	return s.stream(ctx, req, false)
}

// stream is Stream; collect says the caller will collect the whole answer before using
// any of it, so a provider.Completer may answer in one exchange.
func (s *Service) stream(ctx context.Context, req *ChatRequest, collect bool) (*Stream, error) {
	if err := validate(req); err != nil {
		s.m.rejected.WithLabelValues("call", string(provider.CodeOf(err))).Inc()
		return nil, err
	}
	r := s.routes.Load()
	chain, err := r.chain(req.Model)
	if err != nil {
		s.m.rejected.WithLabelValues("call", string(provider.CodeOf(err))).Inc()
		return nil, err
	}
	ctx, span := s.tracer.Start(ctx, "chat "+chain[0].name, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() { // attributes cost allocations even on a span that drops them
		requestAttributes(span, chain[0].name, req)
	}
	var lastErr error
	for i, t := range chain {
		if i > 0 {
			s.m.fallbacks.WithLabelValues(chain[i-1].label, t.label, string(provider.CodeOf(lastErr))).Inc()
			span.AddEvent("fallback", trace.WithAttributes(attribute.String("from", chain[i-1].name),
				attribute.String("to", t.name), attribute.String("error.type", string(provider.CodeOf(lastErr)))))
		}
		st, err := s.try(ctx, r, t, req, span, collect)
		if err == nil {
			if i > 0 {
				st.FallbackFrom = chain[0].name
			}
			return st, nil
		}
		lastErr = err
		if !fallbackEligible(err) || ctx.Err() != nil {
			break
		}
	}
	endSpan(span, lastErr)
	return nil, lastErr
}

// requestAttributes puts the GenAI request attributes on span.
func requestAttributes(span trace.Span, model string, req *ChatRequest) {
	span.SetAttributes(attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.request.model", model))
	if req.Temperature != nil {
		span.SetAttributes(attribute.Float64("gen_ai.request.temperature", *req.Temperature))
	}
	if req.TopP != nil {
		span.SetAttributes(attribute.Float64("gen_ai.request.top_p", *req.TopP))
	}
	if req.MaxTokens > 0 {
		span.SetAttributes(attribute.Int("gen_ai.request.max_tokens", req.MaxTokens))
	}
	if len(req.Stop) > 0 {
		span.SetAttributes(attribute.StringSlice("gen_ai.request.stop_sequences", req.Stop))
	}
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		code := string(provider.CodeOf(err))
		span.SetAttributes(attribute.String("error.type", code))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// try runs one model with retries.
func (s *Service) try(ctx context.Context, r *routes, t *target, req *ChatRequest, span trace.Span, collect bool) (*Stream, error) {
	preq := req.Request
	preq.Model = t.upstream
	if req.ContextBudget != BudgetOff {
		var err error
		if preq, err = s.applyBudget(ctx, r, t, preq, req.ContextBudget); err != nil {
			return nil, err
		}
	}
	res := t.res
	if req.TimeoutMs > 0 {
		res.Timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	if req.FirstTokenTimeoutMs > 0 {
		res.FirstTokenTimeout = time.Duration(req.FirstTokenTimeoutMs) * time.Millisecond
	}
	attempts := 0
	var st *Stream
	var sleepErr error
	err := resilience.Retry(ctx, resilience.Policy{
		MaxAttempts: max(res.MaxRetries, 0) + 1,
		Initial:     res.BackoffBase, Max: res.BackoffMax, Multiplier: 2,
		MaxRetryAfter: res.MaxRetryAfter,
		Retryable:     func(err error) bool { return err.(*provider.Error).Retryable && ctx.Err() == nil },
		RetryAfter:    func(err error) time.Duration { return err.(*provider.Error).RetryAfter },
		OnRetry: func(attempt int, wait time.Duration, err error) {
			code := string(err.(*provider.Error).Code)
			s.m.retries.WithLabelValues(t.prov.name, t.label, code).Inc()
			span.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", attempt),
				attribute.String("error.type", code), attribute.Int64("wait_ms", wait.Milliseconds())))
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			sleepErr = s.deps.Sleep(ctx, d)
			return sleepErr
		},
		Rand: s.deps.Rand,
	}, func(ctx context.Context) error {
		attempts++
		var err error
		if st, err = s.attempt(ctx, t, &preq, res, span, collect); err == nil {
			return nil
		}
		e := provider.AsError(err)
		if e.Provider == "" {
			e.Provider = t.prov.name
		}
		if e.Model == "" {
			e.Model = t.name
		}
		s.m.requests.WithLabelValues(t.prov.name, t.label, string(e.Code)).Inc()
		return e
	})
	if sleepErr != nil {
		return nil, provider.AsError(sleepErr)
	}
	if err != nil {
		return nil, err
	}
	st.Attempts = attempts
	return st, nil
}

// attempt sends the request once and waits for the first chunk. With collect, a
// provider.Completer answers whole instead: its answer is the first chunk, so the
// first-token timeout does not apply (the response timeout does).
func (s *Service) attempt(ctx context.Context, t *target, req *api.Request, res Resilience, span trace.Span, collect bool) (*Stream, error) {
	cb := t.breaker(s.m)
	done, err := cb.Allow()
	if err != nil {
		return nil, &provider.Error{Code: provider.CodeCircuitOpen, Provider: t.prov.name, Model: t.name,
			Message: "circuit breaker " + cb.State().String() + "; failing fast"}
	}
	ps := t.prov
	select {
	case ps.sem <- struct{}{}:
	default:
		select {
		case ps.sem <- struct{}{}:
		case <-ctx.Done():
			e := provider.AsError(ctx.Err())
			e.Message = "waiting for a free slot of provider " + ps.name + ": " + e.Message
			e.Retryable = false
			done(context.Canceled)
			return nil, e
		}
	}
	s.m.inflight.WithLabelValues(ps.name).Inc()
	start := time.Now()
	actx, cancel := context.WithCancelCause(ctx)
	actx, cancelTimeout := context.WithTimeoutCause(actx, res.Timeout, errResponseTimeout)
	st := &Stream{s: s, t: t, span: span, start: start, done: done, req: req,
		cancel: func() { cancelTimeout(); cancel(errClosedByCaller) }, actx: actx, res: res,
		Provider: ps.name, Model: t.name}
	var inner api.Stream
	if c, ok := ps.adapter.(provider.Completer); ok && collect {
		var resp *api.Response
		if resp, err = c.Complete(actx, req); err == nil {
			inner = provider.ResponseStream(resp)
		}
	} else {
		ttft := time.AfterFunc(res.FirstTokenTimeout, func() { cancel(errFirstTokenTimeout) })
		inner, err = ps.adapter.Stream(actx, req)
		defer ttft.Stop()
	}
	var first api.Chunk
	if err == nil {
		st.inner = inner
		first, err = inner.Recv()
	}
	if errors.Is(err, io.EOF) {
		st.finish(nil)
		st.eof = true
		return st, nil
	}
	if err != nil {
		err = st.classify(err)
		st.finish(err)
		return nil, err
	}
	s.m.ttft.WithLabelValues(ps.name, t.label).Observe(time.Since(start).Seconds())
	st.first = &first
	return st, nil
}

// Stream is a running model call. Recv and Close are not safe for concurrent use with
// each other except that Close may be called from another goroutine to abort.
type Stream struct {
	// Provider and Model name the provider and model that answered.
	Provider string
	Model    string
	// Attempts counts tries on the answering model (1 = no retry).
	Attempts int
	// FallbackFrom is the requested model when a fallback answered.
	FallbackFrom string

	s      *Service
	t      *target
	span   trace.Span
	req    *api.Request
	res    Resilience
	actx   context.Context
	cancel func()
	done   func(error)
	inner  api.Stream
	start  time.Time
	first  *api.Chunk
	eof    bool
	err    error

	once    sync.Once
	usage   *api.Usage
	outEst  int
	reasons []string
}

// Recv returns the next chunk, io.EOF at the end, or a typed *provider.Error.
func (st *Stream) Recv() (api.Chunk, error) {
	if st.first != nil {
		c := *st.first
		st.first = nil
		st.observe(c)
		return c, nil
	}
	if st.eof {
		return api.Chunk{}, io.EOF
	}
	if st.err != nil {
		return api.Chunk{}, st.err
	}
	c, err := st.inner.Recv()
	if err == nil {
		st.observe(c)
		return c, nil
	}
	if errors.Is(err, io.EOF) {
		st.eof = true
		st.finish(nil)
		return api.Chunk{}, io.EOF
	}
	st.err = st.classify(err)
	st.finish(st.err)
	return api.Chunk{}, st.err
}

// Buffered reports whether the next Recv returns without waiting on the provider.
func (st *Stream) Buffered() bool {
	if st.first != nil {
		return true
	}
	if st.eof || st.err != nil {
		return true
	}
	b, ok := st.inner.(api.Buffered)
	return ok && b.Buffered()
}

// Close ends the call, releasing the upstream connection. Closing before io.EOF counts
// as a cancellation, not a provider failure.
func (st *Stream) Close() error {
	st.finish(provider.AsError(context.Canceled))
	return nil
}

// Usage is the provider's reported usage or, when it reported none, the estimate.
// Complete after io.EOF.
func (st *Stream) Usage() api.Usage {
	if st.usage != nil {
		return *st.usage
	}
	return api.Usage{InputTokens: provider.EstimateRequest(st.req), OutputTokens: st.outEst, Estimated: true}
}

func (st *Stream) observe(c api.Chunk) {
	if c.Usage != nil {
		u := *c.Usage
		st.usage = &u
	}
	if c.FinishReason != "" {
		st.reasons = append(st.reasons, string(c.FinishReason))
	}
	if c.Text != "" {
		st.outEst += provider.EstimateTokens(c.Text)
	}
	if c.ToolCall != nil {
		st.outEst += provider.EstimateTokens(c.ToolCall.Name) + provider.EstimateTokens(c.ToolCall.Arguments)
	}
}

// classify turns an attempt's error into a typed error, naming which timeout fired.
func (st *Stream) classify(err error) error {
	switch context.Cause(st.actx) {
	case errFirstTokenTimeout:
		return &provider.Error{Code: provider.CodeTimeout, Provider: st.Provider, Model: st.Model, Retryable: true,
			Message: fmt.Sprintf("no first token within %s", st.res.FirstTokenTimeout), Err: err}
	case errResponseTimeout:
		return &provider.Error{Code: provider.CodeTimeout, Provider: st.Provider, Model: st.Model, Retryable: true,
			Message: fmt.Sprintf("response not complete within %s", st.res.Timeout), Err: err}
	}
	e := provider.AsError(err)
	if e.Provider == "" {
		e.Provider = st.Provider
	}
	if e.Model == "" {
		e.Model = st.Model
	}
	return e
}

// endedStream is what a provider stream offers for closing after a clean end.
type endedStream interface {
	// CloseWouldWait reports whether closing would wait for the network.
	CloseWouldWait() bool
	// Detach frees the rest of the body from the request's context.
	Detach()
	// CloseEnded is Close for the goroutine that read the stream to its end.
	CloseEnded() error
}

// finish records the outcome once: breaker, metrics, span, and releases the slot.
func (st *Stream) finish(err error) {
	st.once.Do(func() {
		// Close (and so drain) the upstream body before cancelling its context: a
		// cancelled request's connection is closed instead of going back to the pool.
		// After a clean end the rest of the body is a few bytes (the chunked
		// terminator) that may still be in flight: they are drained off the caller's
		// path, so its reply does not wait for them. The body is detached from the
		// context first, here, because the caller's context (an HTTP request's) ends
		// as soon as the reply is out, which would abort the drain and close the
		// connection (see provider.DrainTimeout). finish(nil) runs on the goroutine
		// that read the stream to its end (Recv, or attempt at an empty stream), so
		// the stream may recycle its buffers (CloseEnded); an abort by Close from
		// another goroutine must not, as a Recv may still be reading them.
		switch w, ok := st.inner.(endedStream); {
		case st.inner == nil:
			st.cancel()
		case err == nil && ok && w.CloseWouldWait():
			w.Detach()
			go func() {
				w.CloseEnded()
				st.cancel()
			}()
		case err == nil && ok:
			w.CloseEnded()
			st.cancel()
		default:
			st.inner.Close()
			st.cancel()
		}
		<-st.t.prov.sem
		s, ps, t := st.s, st.t.prov, st.t
		// The gauge drops last: once mxp_inference_inflight says the stream is over, its
		// outcome is counted (a reader that waits for the gauge then reads the counters,
		// as the integration tests do, sees them).
		defer s.m.inflight.WithLabelValues(ps.name).Dec()
		st.done(err)
		if err != nil {
			// A failed attempt before the first chunk is counted (and retried) by try;
			// here only errors after the stream was handed out are counted.
			if st.started() {
				s.m.requests.WithLabelValues(ps.name, t.label, string(provider.CodeOf(err))).Inc()
				endSpan(st.span, err)
			}
			return
		}
		u := st.Usage()
		s.m.requests.WithLabelValues(ps.name, t.label, "ok").Inc()
		s.m.duration.WithLabelValues(ps.name, t.label).Observe(time.Since(st.start).Seconds())
		s.m.tokens.WithLabelValues(ps.name, t.label, "input").Add(float64(u.InputTokens))
		s.m.tokens.WithLabelValues(ps.name, t.label, "output").Add(float64(u.OutputTokens))
		if cost := float64(u.InputTokens)*t.model.InputPrice/1e6 + float64(u.OutputTokens)*t.model.OutputPrice/1e6; cost > 0 {
			s.m.cost.WithLabelValues(ps.name, t.label).Add(cost)
		}
		if st.span.IsRecording() {
			st.span.SetAttributes(
				attribute.String("gen_ai.system", genAISystem(ps.kind)),
				attribute.String("gen_ai.provider.name", genAISystem(ps.kind)),
				attribute.String("gen_ai.response.model", t.upstream),
				attribute.StringSlice("gen_ai.response.finish_reasons", st.reasons),
				attribute.Int("gen_ai.usage.input_tokens", u.InputTokens),
				attribute.Int("gen_ai.usage.output_tokens", u.OutputTokens),
				attribute.Bool("mxp.inference.usage_estimated", u.Estimated),
				attribute.Int("mxp.inference.attempts", st.Attempts))
		}
		st.span.End()
	})
}

// started reports whether the stream got past its first chunk (so it owns the span).
func (st *Stream) started() bool { return st.Attempts > 0 }

// genAISystem maps a provider kind to the OpenTelemetry GenAI well-known system value.
func genAISystem(kind string) string {
	switch kind {
	case KindGemini:
		return "gcp.gemini"
	case KindMock:
		return "mxp.mock"
	case KindMxp:
		return "mxp.agent"
	}
	return strings.ToLower(kind)
}
