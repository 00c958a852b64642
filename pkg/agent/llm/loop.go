package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/api/inference"
)

// DefaultMaxSteps is the step limit of a ToolLoop whose MaxSteps is zero.
const DefaultMaxSteps = 8

// ToolLoop runs the tool-calling conversation between a model and a toolbox: it sends the
// messages and tool specs to the model, runs every tool call the model asks for, appends
// the results as tool messages, and asks again, until the model answers without tool
// calls or MaxSteps model calls have been made.
type ToolLoop struct {
	Model    ChatModel
	Tools    *Toolbox // nil: no tools are offered
	MaxSteps int      // model calls allowed; 0 means DefaultMaxSteps

	// OnToolCall, if set, is called after each tool call with the call, its result and
	// its error (before the result is fed back to the model).
	OnToolCall func(call ToolCall, result json.RawMessage, err error)
}

// LoopResult is what a ToolLoop produced.
type LoopResult struct {
	Answer    Message   // the model's final message (the last one, when the limit was hit)
	Messages  []Message // the whole conversation: the request's messages plus every turn
	Steps     int       // model calls made
	ToolCalls int       // tool calls run
	Usage     Usage     // tokens over every step
	Model     string    // the model that answered last
	Provider  string    // its provider
}

// toolError is what the model sees when a tool call fails, so it can correct itself.
type toolError struct {
	Error string     `json:"error"`
	Code  agent.Code `json:"code"`
}

// Run runs the loop from req. Tool failures (bad arguments, unknown tool, tool errors)
// are reported to the model as {"error","code"} tool results and the loop goes on; a
// model error or a cancelled context ends the loop with that error. Hitting the step limit
// returns the result so far and an *agent.Error with agent.CodeStepLimit.
func (l *ToolLoop) Run(ctx context.Context, req ChatRequest) (LoopResult, error) {
	// req is a copy: the caller's request is never modified.
	if l.Model == nil {
		return LoopResult{}, errors.New("llm: ToolLoop without a Model")
	}
	maxSteps := l.MaxSteps
	if maxSteps <= 0 {
		maxSteps = DefaultMaxSteps
	}
	if l.Tools != nil {
		req.Tools = append(append([]inference.Tool(nil), req.Tools...), l.Tools.ModelTools()...)
	}
	res := LoopResult{Messages: append([]Message(nil), req.Messages...)}
	for res.Steps < maxSteps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		req.Messages = res.Messages
		resp, err := l.Model.Chat(ctx, &req)
		res.Steps++
		if err != nil {
			return res, fmt.Errorf("llm: model call %d: %w", res.Steps, err)
		}
		res.Usage = addUsage(res.Usage, resp.Usage)
		res.Model, res.Provider = resp.Model, resp.Provider
		msg := AssistantMessage(resp)
		res.Messages = append(res.Messages, msg)
		res.Answer = msg
		if len(msg.ToolCalls) == 0 {
			return res, nil
		}
		for _, call := range msg.ToolCalls {
			out, err := l.runTool(ctx, call)
			res.ToolCalls++
			if err != nil && ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Messages = append(res.Messages, Message{Role: RoleTool, ToolCallID: call.ID, Name: call.Name, Content: string(out)})
		}
	}
	return res, agent.Errorf(agent.CodeStepLimit, "model still calling tools after %d steps", maxSteps)
}

// runTool runs one call and returns the content of its tool message: the result, or a
// JSON error object the model can read.
func (l *ToolLoop) runTool(ctx context.Context, call ToolCall) (json.RawMessage, error) {
	var out json.RawMessage
	var err error
	if l.Tools == nil {
		err = agent.Errorf(agent.CodeNotFound, "no tool named %q", call.Name)
	} else {
		out, err = l.Tools.Call(ctx, call.Name, json.RawMessage(call.Arguments))
	}
	if l.OnToolCall != nil {
		l.OnToolCall(call, out, err)
	}
	if err != nil {
		e := agent.AsError(err)
		b, _ := json.Marshal(toolError{Error: e.Message, Code: e.Code})
		return b, err
	}
	return out, nil
}
