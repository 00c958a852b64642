// Command multi-agent runs two agents that work together: a reviewer, which reviews code
// with the mesh's model and streams its review word by word, and a coordinator, which
// callers ask for a review. The coordinator discovers a reviewer by capability, opens a
// stream to it and relays the reviewer's answer to its own caller as it arrives. See
// README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Capabilities of the two agents.
const (
	CapabilityReview     = "review.code"
	CapabilityCoordinate = "review.coordinate"
)

// ReviewRequest opens a review stream (to the coordinator or to a reviewer).
type ReviewRequest struct {
	Code     string `json:"code"`
	Language string `json:"language,omitempty"`
}

// Options are the command's flags.
type Options struct {
	EdgeAddr, EdgeKey, KeyDir string
}

func config(opts Options, name string, caps []string, log *slog.Logger) agent.Config {
	return agent.Config{Name: name, Capabilities: caps, Version: "1.0.0", Logger: log,
		EdgeAddr: opts.EdgeAddr, EdgeKey: opts.EdgeKey, KeyFile: opts.KeyDir + "/" + name + ".key"}
}

func decodeRequest(b []byte) (ReviewRequest, error) {
	var req ReviewRequest
	if err := json.Unmarshal(b, &req); err != nil || strings.TrimSpace(req.Code) == "" {
		return req, agent.Errorf(agent.CodeInvalidArgument, "want {\"code\": \"...\"} with some code")
	}
	return req, nil
}

// NewReviewer builds the reviewer: it asks the mesh's model for a review of the code it
// is sent and streams the review back as the model generates it.
func NewReviewer(opts Options, log *slog.Logger) (*agent.Agent, error) {
	a, err := agent.New(config(opts, "reviewer", []string{CapabilityReview}, log))
	if err != nil {
		return nil, err
	}
	a.HandleStream(func(ctx context.Context, s *agent.Stream) error {
		req, err := decodeRequest(s.Request())
		if err != nil {
			return err
		}
		prompt := fmt.Sprintf("Review this %s code: %s", req.Language, req.Code)
		// The model's answer streams from the inference service through the edge, and
		// each piece of text goes on to the caller as it arrives.
		review, err := llm.Mesh(a).ChatStream(ctx, ptr(llm.NewChatRequest("", llm.Message{Role: llm.RoleUser, Content: prompt})))
		if err != nil {
			return err
		}
		_, err = llm.RelayText(ctx, s, review)
		return err
	})
	return a, nil
}

func ptr[T any](v T) *T { return &v }

// NewCoordinator builds the coordinator: for each stream a caller opens, it discovers a
// reviewer, opens a stream to it with the same request, and relays every chunk.
func NewCoordinator(opts Options, log *slog.Logger) (*agent.Agent, error) {
	a, err := agent.New(config(opts, "coordinator", []string{CapabilityCoordinate}, log))
	if err != nil {
		return nil, err
	}
	a.HandleStream(func(ctx context.Context, s *agent.Stream) error {
		if _, err := decodeRequest(s.Request()); err != nil {
			return err
		}
		reviewers, err := a.Discover(ctx, mxp.DiscoverRequest{Capabilities: []string{CapabilityReview}})
		if err != nil {
			return err
		}
		var lastErr error = agent.Errorf(agent.CodeNotFound, "no reviewer is online")
		for _, r := range reviewers {
			up, err := a.OpenStream(ctx, r.ID.String(), mxp.StreamKindText, s.Request())
			if err != nil {
				lastErr = err // gone since discovery: try the next one
				continue
			}
			return relay(ctx, up, s)
		}
		return lastErr
	})
	return a, nil
}

// relay copies the reviewer's chunks to the caller until the reviewer ends the stream.
func relay(ctx context.Context, from *agent.ClientStream, to *agent.Stream) error {
	defer from.Close(context.WithoutCancel(ctx))
	for {
		chunk, err := from.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := to.Send(ctx, chunk); err != nil {
			return err
		}
	}
}

func main() {
	var opts Options
	flag.StringVar(&opts.EdgeAddr, "edge-addr", "", "the edge's UDP address (default $MXP_EDGE, else .mxp/edge.json, written by mxp dev)")
	flag.StringVar(&opts.EdgeKey, "edge-key", "", "the edge's public key (base64; default $MXP_EDGE_KEY, else .mxp/edge.json)")
	flag.StringVar(&opts.KeyDir, "key-dir", ".mxp", "where the agents' private keys live (created on first run)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	reviewer, err := NewReviewer(opts, log)
	if err == nil {
		var coordinator *agent.Agent
		if coordinator, err = NewCoordinator(opts, log); err == nil {
			err = runAll(reviewer, coordinator)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "multi-agent:", err)
		os.Exit(1)
	}
}

// runAll runs the agents until SIGINT or SIGTERM, then retires them all.
func runAll(agents ...*agent.Agent) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errs := make([]error, len(agents))
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = a.Run(ctx); errs[i] != nil {
				stop() // one agent down: retire the others too
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
