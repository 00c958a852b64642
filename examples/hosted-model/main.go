// Command hosted-model serves models from an agent to the whole mesh and asks one of them
// through the inference service's OpenAI-compatible API, the way any OpenAI client would.
//
//	hosted-model serve            # the agent "model-host", serving two models
//	hosted-model ask PROMPT       # streams the answer of mxp/model-host/shout over HTTP
//
// The agent serves "shout", a model in its own code (it answers the prompt in capitals,
// word by word), and "mock", the inference service's deterministic mock adapter wrapped
// as it is: any provider adapter can be served the same way. The inference service routes
// "mxp/model-host/<model>" to the agent with its breaker, retries, fallbacks and metrics,
// streamed or whole. See README.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	"github.com/mxp-mesh/mesh/services/inference/provider"
)

// Options are the serve command's flags.
type Options struct {
	EdgeAddr string
	EdgeKey  string
	KeyFile  string
	Name     string
}

// Shout is the model in the agent's own code: the last message in capitals, one chunk a
// word, then the finish reason and the usage.
func Shout(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	if len(req.Messages) == 0 {
		return nil, agent.Errorf("invalid_request", "shout needs a message")
	}
	words := strings.Fields(strings.ToUpper(req.Messages[len(req.Messages)-1].Content))
	return &wordStream{ctx: ctx, words: words}, nil
}

type wordStream struct {
	ctx   context.Context
	words []string
	sent  int
}

func (s *wordStream) Recv() (llm.Chunk, error) {
	if err := s.ctx.Err(); err != nil {
		return llm.Chunk{}, err // the caller went away: stop generating
	}
	switch {
	case s.sent < len(s.words):
		w := s.words[s.sent]
		if s.sent > 0 {
			w = " " + w
		}
		s.sent++
		return llm.Chunk{Text: w}, nil
	case s.sent == len(s.words):
		s.sent++
		return llm.Chunk{FinishReason: llm.FinishStop,
			Usage: &llm.Usage{InputTokens: len(s.words), OutputTokens: len(s.words)}}, nil
	}
	return llm.Chunk{}, io.EOF
}

func (s *wordStream) Close() error { return nil }

// NewAgent builds the agent that serves "shout" and "mock" as mxp/<name>/shout and
// mxp/<name>/mock.
func NewAgent(opts Options, log *slog.Logger) (*agent.Agent, error) {
	a, err := agent.New(agent.Config{
		Name: opts.Name, Version: "1.0.0", Description: "serves the models shout and mock to the mesh",
		EdgeAddr: opts.EdgeAddr, EdgeKey: opts.EdgeKey, KeyFile: opts.KeyFile, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	host, err := llm.ServeModel(a, "shout", llm.ChatStreamerFunc(Shout))
	if err != nil {
		return nil, err
	}
	if err := host.Add("mock", llm.AdapterModel{Adapter: &provider.Mock{}}); err != nil {
		return nil, err
	}
	a.Advertise(host.Capabilities()...)
	return a, nil
}

// Ask sends prompt to model through the OpenAI-compatible API at base (".../v1") as a
// streamed chat completion and writes the answer to w as it arrives. An error response
// (or an error event in the stream) is returned with its code.
func Ask(ctx context.Context, base, model, prompt string, w io.Writer) error {
	body, _ := json.Marshal(map[string]any{"model": model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": prompt}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key := os.Getenv("MXP_API_KEY"); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	type apiError struct {
		Message string `json:"message"`
		Code    string `json:"code"`
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error apiError }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s (HTTP %d): %s", e.Error.Code, resp.StatusCode, e.Error.Message)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			_, err := fmt.Fprintln(w)
			return err
		}
		var ev struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Error *apiError `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("unreadable event %q: %w", data, err)
		}
		if ev.Error != nil {
			return fmt.Errorf("%s: %s", ev.Error.Code, ev.Error.Message)
		}
		for _, c := range ev.Choices {
			if _, err := io.WriteString(w, c.Delta.Content); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the stream ended without [DONE]")
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hosted-model serve [flags] | hosted-model ask [flags] PROMPT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "ask":
		ask(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "hosted-model: unknown command %q; want serve or ask\n", os.Args[1])
		os.Exit(2)
	}
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var opts Options
	fs.StringVar(&opts.EdgeAddr, "edge-addr", "", "the edge's UDP address (default $MXP_EDGE, else .mxp/edge.json, written by mxp dev)")
	fs.StringVar(&opts.EdgeKey, "edge-key", "", "the edge's public key (base64; default $MXP_EDGE_KEY, else .mxp/edge.json)")
	fs.StringVar(&opts.KeyFile, "key-file", ".mxp/hosted-model.key", "this agent's private key (created on first run)")
	fs.StringVar(&opts.Name, "name", "model-host", "the agent's name: its models are mxp/<name>/shout and mxp/<name>/mock")
	_ = fs.Parse(args)
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	a, err := NewAgent(opts, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hosted-model:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "hosted-model:", err)
		os.Exit(1)
	}
}

func ask(args []string) {
	fs := flag.NewFlagSet("ask", flag.ExitOnError)
	defaultAPI := "http://127.0.0.1:8080/v1"          // mxp dev's HTTP address
	if u := os.Getenv("MXP_INFERENCE_URL"); u != "" { // make compose-up's export line
		defaultAPI = u
	}
	api := fs.String("api", defaultAPI, "base URL of the inference service's OpenAI-compatible API (default $MXP_INFERENCE_URL, else mxp dev's HTTP address)")
	model := fs.String("model", "mxp/model-host/shout", "the model: mxp/<agent-name>/<model>")
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: hosted-model ask [-api URL] [-model NAME] PROMPT")
		os.Exit(2)
	}
	if err := Ask(context.Background(), *api, *model, strings.Join(fs.Args(), " "), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hosted-model:", err)
		os.Exit(1)
	}
}
