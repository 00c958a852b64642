// Command basic-agent is the smallest useful MXP agent: it registers with the mesh, offers
// one tool (word_count), and answers each call with the mesh's model (the inference
// service, whose default provider in `mxp dev` is the deterministic mock), letting the
// model use the tool. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
)

// Options are the command's flags.
type Options struct {
	EdgeAddr string
	EdgeKey  string
	KeyFile  string
	Name     string
}

// AskRequest is what callers send.
type AskRequest struct {
	Prompt string `json:"prompt"`
}

// AskResponse is what the agent answers.
type AskResponse struct {
	Answer string `json:"answer"`
	Steps  int    `json:"steps"`
}

// WordCountArgs are the arguments of the word_count tool.
type WordCountArgs struct {
	Text string `json:"text" desc:"the text whose words to count"`
}

// WordCount is the word_count tool's result.
type WordCount struct {
	Words int `json:"words"`
}

// Capability is what the agent registers, so others can discover it.
const Capability = "chat.basic"

// NewAgent builds the agent: its tool and its call handler.
func NewAgent(opts Options, log *slog.Logger) (*agent.Agent, error) {
	a, err := agent.New(agent.Config{
		Name: opts.Name, Capabilities: []string{Capability}, Version: "1.0.0",
		Description: "answers prompts with the mesh's model and a word_count tool",
		EdgeAddr:    opts.EdgeAddr, EdgeKey: opts.EdgeKey, KeyFile: opts.KeyFile, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	wordCount, err := llm.NewTool("word_count", "Counts the words of a text",
		func(ctx context.Context, args WordCountArgs) (WordCount, error) {
			return WordCount{Words: len(strings.Fields(args.Text))}, nil
		})
	if err != nil {
		return nil, err
	}
	tools, err := llm.NewToolbox(wordCount)
	if err != nil {
		return nil, err
	}
	if err := tools.Advertise(a); err != nil {
		return nil, err
	}
	a.HandleCall(agent.JSONCall(func(ctx context.Context, req AskRequest) (AskResponse, error) {
		if strings.TrimSpace(req.Prompt) == "" {
			return AskResponse{}, agent.Errorf(agent.CodeInvalidArgument, "prompt is empty")
		}
		loop := llm.ToolLoop{Model: llm.Mesh(a), Tools: tools, MaxSteps: 4}
		res, err := loop.Run(ctx, llm.NewChatRequest("", llm.Message{Role: llm.RoleUser, Content: req.Prompt}))
		if err != nil {
			return AskResponse{}, err
		}
		return AskResponse{Answer: res.Answer.Content, Steps: res.Steps}, nil
	}))
	return a, nil
}

func main() {
	var opts Options
	flag.StringVar(&opts.EdgeAddr, "edge-addr", "", "the edge's UDP address (default $MXP_EDGE, else .mxp/edge.json, written by mxp dev)")
	flag.StringVar(&opts.EdgeKey, "edge-key", "", "the edge's public key (base64; default $MXP_EDGE_KEY, else .mxp/edge.json)")
	flag.StringVar(&opts.KeyFile, "key-file", ".mxp/basic-agent.key", "this agent's private key (created on first run)")
	flag.StringVar(&opts.Name, "name", "basic-agent", "the agent's name")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	a, err := NewAgent(opts, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "basic-agent:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "basic-agent:", err)
		os.Exit(1)
	}
}
