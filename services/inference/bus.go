package inference

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/services/inference/provider"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// busError turns any error into the bus's typed error reply.
func busError(err error) *bus.Error {
	e := provider.AsError(err)
	return &bus.Error{Code: e.Code, Message: e.Error()}
}

// busLimits are the bus intake limits: the request size and concurrency from config, a
// handling bound long enough for the slowest configured model call, and the per-agent
// rate from config.
func (s *Service) busLimits() security.Limits {
	cfg := s.Config()
	return security.Limits{MaxPayloadBytes: int(cfg.MaxRequestBytes), MaxConcurrent: cfg.MaxBusInflight,
		RequestTimeout: cfg.BusRequestTimeout, RatePerSecond: cfg.BusRatePerAgent}
}

// serveBus registers the endpoints (pkg/common/service.Endpoints: intake that closes on
// shutdown, size limits, per-agent rate limits, the caller's deadline and trace context,
// per-endpoint metrics) and returns a function that stops intake and waits for requests
// in flight.
func (s *Service) serveBus(nc *nats.Conn) (func(ctx context.Context) error, error) {
	deps := service.Deps{Logger: s.log, Conn: nc, Metrics: s.deps.Metrics, Tracer: s.tracer}.WithDefaults("inference")
	ep, err := service.NewEndpoints(deps, micro.Config{Name: "inference", Version: Version,
		Description: "MXP mesh inference: chat completions over every configured model provider",
		QueueGroup:  bus.QueueInference}, s.busLimits())
	if err != nil {
		return nil, err
	}
	if err := errors.Join(
		ep.Handle("chat", bus.SubjectInferenceChat, s.busChat),
		ep.Handle("stream", bus.SubjectInferenceStream, func(ctx context.Context, r service.Request) (any, error) {
			return s.busStream(ctx, nc, r)
		}),
		ep.Handle("models", bus.SubjectInferenceModels, func(ctx context.Context, _ service.Request) (any, error) {
			return s.ListModels(ctx), nil
		}),
	); err != nil {
		ep.Stop(context.Background())
		return nil, err
	}
	s.endpoints.Store(ep)
	return ep.Stop, nil
}

func (s *Service) parseBusRequest(data []byte) (*ChatRequest, error) {
	var req ChatRequest
	if err := json.Unmarshal(data, &req); err != nil {
		s.m.rejected.WithLabelValues("bus", string(provider.CodeInvalidRequest)).Inc()
		return nil, provider.Errorf(provider.CodeInvalidRequest, "request is not a valid ChatRequest: %v", err)
	}
	return &req, nil
}

func (s *Service) busChat(ctx context.Context, r service.Request) (any, error) {
	req, err := s.parseBusRequest(r.Data)
	if err != nil {
		return nil, busError(err)
	}
	resp, err := s.Chat(ctx, req)
	if err != nil {
		return nil, busError(err)
	}
	return resp, nil
}

// busStream publishes each chunk to the reply inbox with a Mxp-Stream-Seq header; the
// returned summary (or error) is the terminal reply, the one message without that header
// (see bus.SubjectInferenceStream).
func (s *Service) busStream(ctx context.Context, nc *nats.Conn, r service.Request) (any, error) {
	if r.Reply == "" {
		s.m.rejected.WithLabelValues("bus", string(provider.CodeInvalidRequest)).Inc()
		return nil, busError(provider.Errorf(provider.CodeInvalidRequest, "a stream request needs a reply inbox"))
	}
	req, err := s.parseBusRequest(r.Data)
	if err != nil {
		return nil, busError(err)
	}
	// The caller may end the stream early (bus.StreamCancelSuffix).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if sub, err := nc.Subscribe(r.Reply+bus.StreamCancelSuffix, func(*nats.Msg) { cancel() }); err == nil {
		defer func() { _ = sub.Unsubscribe() }()
	}
	st, err := s.Stream(ctx, req)
	if err != nil {
		return nil, busError(err)
	}
	defer st.Close()
	var finish api.FinishReason
	for seq := 0; ; seq++ {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, busError(err)
		}
		if c.FinishReason != "" {
			finish = c.FinishReason
		}
		data, _ := json.Marshal(c)
		msg := &nats.Msg{Subject: r.Reply, Data: data, Header: nats.Header{bus.HeaderStreamSeq: {strconv.Itoa(seq)}}}
		if err := nc.PublishMsg(msg); err != nil {
			return nil, busError(provider.Errorf(provider.CodeUnavailable, "publishing chunk %d: %v", seq, err))
		}
	}
	return StreamSummary{Model: st.Model, Provider: st.Provider, FinishReason: finish, Usage: st.Usage()}, nil
}

// defaultBusRequestTimeout bounds one bus request when the config sets none.
const defaultBusRequestTimeout = 10 * time.Minute
