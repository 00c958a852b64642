package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func TestCoordinatorStreamsTheReviewersAnswer(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := meshtest.New(t, nil)
	opts := Options{EdgeAddr: m.EdgeAddr, EdgeKey: m.EdgeKey, KeyDir: t.TempDir()}
	coordinator, err := NewCoordinator(opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	client, err := agent.New(agent.Config{Name: "caller", EdgeAddr: m.EdgeAddr, EdgeKey: m.EdgeKey, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	meshtest.Run(t, coordinator)
	meshtest.Run(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := json.Marshal(ReviewRequest{Code: "func f() {}", Language: "Go"})

	review := func() (string, error) {
		s, err := client.OpenStream(ctx, coordinator.ID(), mxp.StreamKindText, req)
		if err != nil {
			return "", err
		}
		var sb strings.Builder
		chunks := 0
		for {
			b, err := s.Recv(ctx)
			if errors.Is(err, io.EOF) {
				if chunks < 2 {
					t.Errorf("review came in %d chunks; want it streamed", chunks)
				}
				return sb.String(), nil
			}
			if err != nil {
				return sb.String(), err
			}
			chunks++
			sb.Write(b)
		}
	}

	// No reviewer yet: the coordinator says so, with a code.
	if _, err := review(); agent.CodeOf(err) != agent.CodeNotFound {
		t.Fatalf("without a reviewer: %v", err)
	}
	reviewer, err := NewReviewer(opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	meshtest.Run(t, reviewer)
	got, err := review()
	if err != nil {
		t.Fatal(err)
	}
	if want := "Mock reply to: Review this Go code: func f() {}"; got != want {
		t.Fatalf("review = %q, want %q", got, want)
	}
	// A bad request is refused by the coordinator before any discovery.
	s, err := client.OpenStream(ctx, coordinator.ID(), mxp.StreamKindText, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(ctx); agent.CodeOf(err) != agent.CodeInvalidArgument {
		t.Fatalf("bad request: %v", err)
	}
}
