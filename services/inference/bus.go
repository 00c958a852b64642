package inference

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/tracing"
	"github.com/mxp-mesh/mesh/services/inference/provider"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// busError turns any error into the bus's typed error reply.
func busError(err error) *bus.Error {
	e := provider.AsError(err)
	return &bus.Error{Status: HTTPStatus(e.Code), Code: string(e.Code), Message: e.Error()}
}

// StreamSummary is the terminal message of a successful bus stream.
type StreamSummary struct {
	Model        string                `json:"model"`
	Provider     string                `json:"provider"`
	FinishReason provider.FinishReason `json:"finish_reason"`
	Usage        provider.Usage        `json:"usage"`
}

// serveBus registers the micro service on nc and returns a function that stops it and
// waits for requests in flight.
func (s *Service) serveBus(nc *nats.Conn) (func() error, error) {
	svc, err := micro.AddService(nc, micro.Config{Name: "inference", Version: Version,
		Description: "MXP mesh inference: chat completions over every configured model provider",
		QueueGroup:  bus.QueueInference})
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.Config().MaxBusInflight)
	// Handlers run on one goroutine per subscription; model calls take seconds, so each
	// request gets its own goroutine, bounded by slots.
	spawn := func(fn func(micro.Request)) micro.HandlerFunc {
		return func(req micro.Request) {
			select {
			case slots <- struct{}{}:
			default:
				s.m.rejected.WithLabelValues("bus", string(provider.CodeRateLimited)).Inc()
				bus.RespondError(req, busError(provider.Errorf(provider.CodeRateLimited, "too many bus requests in flight")))
				return
			}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				fn(req)
			}()
		}
	}
	add := func(name, subject string, h micro.HandlerFunc) error {
		return svc.AddEndpoint(name, h, micro.WithEndpointSubject(subject))
	}
	if err := errors.Join(
		add("chat", bus.SubjectInferenceChat, spawn(s.busChat)),
		add("stream", bus.SubjectInferenceStream, spawn(func(r micro.Request) { s.busStream(nc, r) })),
		add("models", bus.SubjectInferenceModels, func(r micro.Request) { r.RespondJSON(s.Models()) }),
	); err != nil {
		svc.Stop()
		return nil, err
	}
	return func() error {
		err := svc.Stop()
		wg.Wait()
		return err
	}, nil
}

// busContext derives the request context: the caller's deadline header and trace context
// (traceparent, or the MXP trace id the edge set).
func busContext(h micro.Headers) (context.Context, context.CancelFunc) {
	ctx := tracing.Extract(context.Background(), nats.Header(h))
	if dl, ok, err := bus.Deadline(nats.Header(h)); ok && err == nil {
		return context.WithDeadline(ctx, dl)
	}
	return context.WithCancel(ctx)
}

func (s *Service) parseBusRequest(r micro.Request) (*ChatRequest, error) {
	if max := s.Config().MaxRequestBytes; int64(len(r.Data())) > max {
		return nil, provider.Errorf(provider.CodeInvalidRequest, "request over %d bytes", max)
	}
	var req ChatRequest
	if err := json.Unmarshal(r.Data(), &req); err != nil {
		return nil, provider.Errorf(provider.CodeInvalidRequest, "request is not a valid ChatRequest: %v", err)
	}
	return &req, nil
}

func (s *Service) busChat(r micro.Request) {
	req, err := s.parseBusRequest(r)
	if err != nil {
		s.m.rejected.WithLabelValues("bus", string(provider.CodeOf(err))).Inc()
		bus.RespondError(r, busError(err))
		return
	}
	ctx, cancel := busContext(r.Headers())
	defer cancel()
	resp, err := s.Chat(ctx, req)
	if err != nil {
		bus.RespondError(r, busError(err))
		return
	}
	r.RespondJSON(resp)
}

// busStream publishes chunks to the request's reply inbox, numbered, then one terminal
// message (see bus.SubjectInferenceStream).
func (s *Service) busStream(nc *nats.Conn, r micro.Request) {
	inbox := r.Reply()
	if inbox == "" {
		s.m.rejected.WithLabelValues("bus", string(provider.CodeInvalidRequest)).Inc()
		return
	}
	seq := 0
	publish := func(data []byte, end bool, h nats.Header) error {
		if h == nil {
			h = nats.Header{}
		}
		h.Set(bus.HeaderStreamSeq, strconv.Itoa(seq))
		if end {
			h.Set(bus.HeaderStreamEnd, "1")
		}
		seq++
		return nc.PublishMsg(&nats.Msg{Subject: inbox, Data: data, Header: h})
	}
	fail := func(err error) {
		e := busError(err)
		body, _ := json.Marshal(bus.ErrorPayload{Error: e.Message, Code: e.Code})
		publish(body, true, nats.Header{
			micro.ErrorHeader:     []string{e.Message},
			micro.ErrorCodeHeader: []string{strconv.Itoa(e.Status)},
			bus.HeaderErrorKind:   []string{e.Code},
		})
	}
	req, err := s.parseBusRequest(r)
	if err != nil {
		s.m.rejected.WithLabelValues("bus", string(provider.CodeOf(err))).Inc()
		fail(err)
		return
	}
	ctx, cancel := busContext(r.Headers())
	defer cancel()
	st, err := s.Stream(ctx, req)
	if err != nil {
		fail(err)
		return
	}
	defer st.Close()
	var finish provider.FinishReason
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail(err)
			return
		}
		if c.FinishReason != "" {
			finish = c.FinishReason
		}
		data, _ := json.Marshal(c)
		if err := publish(data, false, nil); err != nil {
			s.log.Warn("bus stream publish failed; ending stream", "error", err)
			return
		}
	}
	sum, _ := json.Marshal(StreamSummary{Model: st.Model, Provider: st.Provider, FinishReason: finish, Usage: st.Usage()})
	publish(sum, true, nil)
}
