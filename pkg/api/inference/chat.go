package inference

// Context budgeting modes (ChatRequest.ContextBudget).
const (
	BudgetOff       = ""
	BudgetDrop      = "drop"
	BudgetSummarize = "summarize"
)

// ChatRequest is a chat call as the service's APIs take it: the body of an MXP Call or
// StreamOpen to the "inference" service, and of a request on the inference bus subjects.
type ChatRequest struct {
	Request
	// ContextBudget opts in to context-window management: "drop" or "summarize".
	ContextBudget string `json:"context_budget,omitempty"`
	// TimeoutMs and FirstTokenTimeoutMs override the model's timeouts for this request.
	TimeoutMs           int64 `json:"timeout_ms,omitempty"`
	FirstTokenTimeoutMs int64 `json:"first_token_timeout_ms,omitempty"`
}

// ChatResponse is a collected result: the answer, and which model and provider gave it.
type ChatResponse struct {
	Response
	Model    string `json:"model"`
	Provider string `json:"provider"`
}

// StreamSummary is the terminal message of a successful stream: the only message of a
// stream that carries "model" and "provider", sent after the last Chunk.
type StreamSummary struct {
	Model        string       `json:"model"`
	Provider     string       `json:"provider"`
	FinishReason FinishReason `json:"finish_reason"`
	Usage        Usage        `json:"usage"`
}
