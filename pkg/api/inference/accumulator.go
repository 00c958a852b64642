package inference

import "strings"

// Accumulator folds chunks into a Response: text and refusal are concatenated, tool-call
// deltas are merged by Index in the order the calls first appear, and the last finish
// reason and usage win. The zero value is ready to use; one goroutine uses it.
type Accumulator struct {
	text    strings.Builder
	refusal strings.Builder
	calls   []ToolCall
	byIndex map[int]int
	finish  FinishReason
	usage   Usage
}

// Add folds one chunk in.
func (a *Accumulator) Add(c Chunk) {
	a.text.WriteString(c.Text)
	a.refusal.WriteString(c.Refusal)
	if d := c.ToolCall; d != nil {
		if a.byIndex == nil {
			a.byIndex = map[int]int{}
		}
		i, ok := a.byIndex[d.Index]
		if !ok {
			i = len(a.calls)
			a.byIndex[d.Index] = i
			a.calls = append(a.calls, ToolCall{})
		}
		tc := &a.calls[i]
		if d.ID != "" {
			tc.ID = d.ID
		}
		if d.Name != "" {
			tc.Name = d.Name
		}
		tc.Arguments += d.Arguments
	}
	if c.FinishReason != "" {
		a.finish = c.FinishReason
	}
	if c.Usage != nil {
		a.usage = *c.Usage
	}
}

// Response returns what was folded in so far.
func (a *Accumulator) Response() *Response {
	return &Response{Text: a.text.String(), Refusal: a.refusal.String(), ToolCalls: a.calls,
		FinishReason: a.finish, Usage: a.usage}
}
