package inference

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// TestHostedError: what an agent or its edge answers becomes the service's codes, with the
// retry decision each implies.
func TestHostedError(t *testing.T) {
	for _, tc := range []struct {
		err       error
		code      provider.Code
		retryable bool
	}{
		{bus.AgentError(nats.ErrNoResponders, "id"), provider.CodeUnavailable, true}, // registered, carried by no edge
		{&mxp.RemoteError{Code: mxp.CodeUnreachable}, provider.CodeUnavailable, true},
		{&mxp.RemoteError{Code: mxp.CodeUnavailable}, provider.CodeUnavailable, true}, // suspended, draining
		{&mxp.RemoteError{Code: mxp.CodeNotFound}, provider.CodeModelNotFound, false}, // the agent serves no such model
		{&mxp.RemoteError{Code: mxp.CodeInvalidArgument}, provider.CodeInvalidRequest, false},
		{&mxp.RemoteError{Code: mxp.CodeInvalidPayload}, provider.CodeInvalidRequest, false},
		{&mxp.RemoteError{Code: mxp.CodeTooLarge}, provider.CodeInvalidRequest, false},
		{&mxp.RemoteError{Code: mxp.CodeForbidden}, provider.CodePermissionDenied, false},
		{&mxp.RemoteError{Code: mxp.CodeRateLimited}, provider.CodeRateLimited, true}, // the agent's own codes pass
		{&mxp.RemoteError{Code: mxp.CodeContextOverflow}, provider.CodeContextOverflow, false},
		{&mxp.RemoteError{Code: mxp.CodeTimeout}, provider.CodeTimeout, true},
		{&mxp.RemoteError{Code: mxp.CodeCanceled}, provider.CodeCanceled, false},
		{&mxp.RemoteError{Code: mxp.CodeInternal}, provider.CodeProviderError, true}, // a panic in the agent's model
		{&mxp.RemoteError{Code: "made_up"}, provider.CodeProviderError, true},
		{errors.New("odd"), provider.CodeProviderError, true},
	} {
		e := hostedError(tc.err, "host", "echo")
		if e.Code != tc.code || e.Retryable != tc.retryable || e.Provider != "mxp" || e.Model != "host/echo" {
			t.Errorf("%v: %s retryable %v (%s/%s), want %s retryable %v", tc.err, e.Code, e.Retryable, e.Provider, e.Model, tc.code, tc.retryable)
		}
	}
}

// TestHostedWithoutBus: a service with no bus connection answers hosted models with
// unavailable, and a malformed hosted name with invalid_request, through the whole
// routing.
func TestHostedWithoutBus(t *testing.T) {
	s, err := New(Defaults(), Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	req := func(model string) *ChatRequest {
		return &ChatRequest{Request: api.Request{Model: model, Messages: []api.Message{{Role: api.RoleUser, Content: "x"}}}}
	}
	if _, err := s.Chat(context.Background(), req("mxp/host/echo")); provider.CodeOf(err) != provider.CodeUnavailable {
		t.Fatalf("no bus: %v", err)
	}
	for _, name := range []string{"mxp/host", "mxp/host/two words", "mxp//echo", "mxp/bad\x01name/echo"} {
		if _, err := s.Chat(context.Background(), req(name)); provider.CodeOf(err) != provider.CodeInvalidRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestHostedWithoutRegistry: with a bus but no registry on it, a hosted model is
// unavailable (retryable) and the error says the registry is what is missing.
func TestHostedWithoutRegistry(t *testing.T) {
	b, err := bus.Start(bus.Config{Embedded: bus.EmbeddedConfig{DontListen: true}}, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := NewHosted(b.Conn, 0)
	_, err = h.Stream(context.Background(), &api.Request{Model: "host/echo",
		Messages: []api.Message{{Role: api.RoleUser, Content: "x"}}})
	e := provider.AsError(err)
	if e.Code != provider.CodeUnavailable || !e.Retryable || !strings.Contains(e.Message, "no registry answers") {
		t.Fatalf("got %v (retryable %v)", err, e.Retryable)
	}
}
