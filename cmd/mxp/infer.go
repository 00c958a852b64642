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
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// defaultInferenceURL is where `mxp infer` finds the OpenAI-compatible API when neither
// --url, MXP_INFERENCE_URL nor a running mxp dev's edge.json says otherwise: the default
// --http-addr of mxp dev, the mesh the README starts. (A separate mxp-inference serves
// 8086; make compose-up prints the MXP_INFERENCE_URL for it.)
const defaultInferenceURL = "http://127.0.0.1:" + defaultDevHTTPPort + "/v1"

func init() {
	register(&command{
		Name:  "infer",
		Short: "send one prompt to a model through the mesh's inference service",
		Usage: "--model M --prompt TEXT [--system TEXT] [--stream]",
		Long: `infer talks to the inference service's OpenAI-compatible HTTP API
(POST /v1/chat/completions), so it works against mxp dev, mxp-inference or any
OpenAI-compatible server. The base URL comes from --url, else MXP_INFERENCE_URL, else
the HTTP address of the running mxp dev (its data directory's edge.json), else
` + defaultInferenceURL + ` (mxp dev's default). A bearer token for the mesh (not
a provider key) comes from --api-key or MXP_API_KEY.

Errors print the service's typed code (invalid_request, rate_limited, timeout,
circuit_open, ...) and exit with status 1.

Examples:
  mxp infer --model mock --prompt "hello"
  mxp infer --model gpt-4o-mini --system "Be terse." --prompt "Why is the sky blue?" --stream`,
		Flags: func(fs *flag.FlagSet) {
			fs.String("model", "", "model name or alias (empty: the service's default model)")
			fs.String("prompt", "", "the user message (required)")
			fs.String("system", "", "system prompt")
			fs.Bool("stream", false, "print tokens as they arrive")
			fs.Int("max-tokens", 0, "cap on output tokens (0: the model's default)")
			fs.String("temperature", "", "sampling temperature in [0, 2]")
			fs.String("url", "", "base URL of the OpenAI-compatible API")
			fs.String("data-dir", defaultDataDir, "the data directory `DIR` of mxp dev (edge.json gives its HTTP address)")
			fs.String("api-key", "", "bearer token for the mesh (default $MXP_API_KEY)")
			fs.Duration("timeout", 2*time.Minute, "give up after this long")
			fs.Bool("usage", false, "print token usage to stderr at the end")
		},
		Run: runInfer,
	})
}

func runInfer(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	get := func(name string) string { return env.Flags.Lookup(name).Value.String() }
	prompt := get("prompt")
	if prompt == "" {
		return usagef("--prompt is required")
	}
	body := map[string]any{"model": get("model"), "stream": get("stream") == "true"}
	var msgs []map[string]string
	if s := get("system"); s != "" {
		msgs = append(msgs, map[string]string{"role": "system", "content": s})
	}
	body["messages"] = append(msgs, map[string]string{"role": "user", "content": prompt})
	if n, _ := strconv.Atoi(get("max-tokens")); n > 0 {
		body["max_tokens"] = n
	} else if n < 0 {
		return usagef("--max-tokens must not be negative")
	}
	if t := get("temperature"); t != "" {
		v, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return usagef("--temperature %q is not a number", t)
		}
		body["temperature"] = v
	}
	if body["stream"] == true {
		body["stream_options"] = map[string]bool{"include_usage": true}
	}
	base := get("url")
	if base == "" {
		base = os.Getenv("MXP_INFERENCE_URL")
	}
	if base == "" {
		if info, err := readEdgeInfo(get("data-dir")); err == nil && info.HTTPAddr != "" {
			base = strings.TrimRight(info.HTTPAddr, "/") + "/v1"
		}
	}
	if base == "" {
		base = defaultInferenceURL
	}
	key := get("api-key")
	if key == "" {
		key = os.Getenv("MXP_API_KEY")
	}
	timeout, _ := time.ParseDuration(get("timeout"))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/chat/completions", bytes.NewReader(data))
	if err != nil {
		return usagef("--url: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("nothing answers at %s (connection refused): check that the mesh is running (mxp dev, or make compose-up), "+
			"or point --url or MXP_INFERENCE_URL at its OpenAI-compatible API", base)
	}
	if err != nil {
		return fmt.Errorf("inference service at %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return inferError(resp)
	}
	var usage *inferUsage
	if body["stream"] == true {
		usage, err = printStream(resp.Body, env.Stdout)
	} else {
		usage, err = printCompletion(resp.Body, env.Stdout)
	}
	if err != nil {
		return err
	}
	if get("usage") == "true" && usage != nil {
		fmt.Fprintf(env.Stderr, "tokens: %d in, %d out\n", usage.PromptTokens, usage.CompletionTokens)
	}
	return nil
}

type inferUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

type inferToolCall struct {
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type inferAPIError struct {
	Error *struct {
		Message string `json:"message"`
		Code    string `json:"code"`
	} `json:"error"`
}

func inferError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e inferAPIError
	if json.Unmarshal(data, &e) == nil && e.Error != nil {
		// The mesh's messages start with their code; it is printed once.
		msg := strings.TrimPrefix(e.Error.Message, e.Error.Code+": ")
		return fmt.Errorf("%s (HTTP %d): %s", e.Error.Code, resp.StatusCode, msg)
	}
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
}

func printCompletion(r io.Reader, w io.Writer) (*inferUsage, error) {
	var out struct {
		Choices []struct {
			Message struct {
				Content   *string         `json:"content"`
				Refusal   string          `json:"refusal"`
				ToolCalls []inferToolCall `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *inferUsage `json:"usage"`
	}
	if err := json.NewDecoder(io.LimitReader(r, 64<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading the reply: %w", err)
	}
	if len(out.Choices) == 0 {
		return nil, fmt.Errorf("reply has no choices")
	}
	m := out.Choices[0].Message
	if m.Content != nil && *m.Content != "" {
		fmt.Fprintln(w, *m.Content)
	}
	if m.Refusal != "" {
		fmt.Fprintln(w, "refusal:", m.Refusal)
	}
	for _, tc := range m.ToolCalls {
		fmt.Fprintf(w, "tool call %s: %s(%s)\n", tc.ID, tc.Function.Name, tc.Function.Arguments)
	}
	return out.Usage, nil
}

func printStream(r io.Reader, w io.Writer) (*inferUsage, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	type call struct{ id, name, args string }
	var calls []*call
	var usage *inferUsage
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			fmt.Fprintln(w)
			for _, c := range calls {
				fmt.Fprintf(w, "tool call %s: %s(%s)\n", c.id, c.name, c.args)
			}
			return usage, nil
		}
		var ev struct {
			inferAPIError
			Choices []struct {
				Delta struct {
					Content   string `json:"content"`
					Refusal   string `json:"refusal"`
					ToolCalls []struct {
						Index int `json:"index"`
						inferToolCall
					} `json:"tool_calls"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *inferUsage `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return nil, fmt.Errorf("malformed stream event: %w", err)
		}
		if ev.Error != nil {
			fmt.Fprintln(w)
			return nil, fmt.Errorf("%s: %s", ev.Error.Code, ev.Error.Message)
		}
		if ev.Usage != nil {
			usage = ev.Usage
		}
		for _, ch := range ev.Choices {
			io.WriteString(w, ch.Delta.Content)
			io.WriteString(w, ch.Delta.Refusal)
			for _, tc := range ch.Delta.ToolCalls {
				for len(calls) <= tc.Index {
					calls = append(calls, &call{})
				}
				c := calls[tc.Index]
				if tc.ID != "" {
					c.id = tc.ID
				}
				c.name += tc.Function.Name
				c.args += tc.Function.Arguments
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the stream: %w", err)
	}
	return nil, fmt.Errorf("stream ended without [DONE]")
}
