package bus

// Inference subjects (services/inference). Request bodies are the inference service's
// ChatRequest JSON: {"model","system","messages":[{"role","content","tool_calls",
// "tool_call_id","name","pinned"}],"temperature","top_p","max_tokens","stop","tools",
// "tool_choice","response_format","context_budget","timeout_ms","first_token_timeout_ms"}.
// Errors are micro error replies (see RespondError) whose Mxp-Error-Kind is one of the
// inference codes: invalid_request, unauthenticated, permission_denied, model_not_found,
// rate_limited, overloaded, provider_error, timeout, circuit_open, context_overflow,
// content_filtered, unavailable, canceled, internal.
const (
	// QueueInference is the queue group of the inference service's endpoints.
	QueueInference = "mxp-inference"

	// SubjectInferenceChat is request/reply: ChatRequest → {"text","refusal",
	// "tool_calls","finish_reason","usage","model","provider"}.
	SubjectInferenceChat = "mxp.inference.chat"

	// SubjectInferenceStream streams a reply. The caller subscribes to an inbox first,
	// then publishes the ChatRequest with that inbox as the reply subject. The service
	// publishes to the inbox, in order, one message per chunk ({"text"} | {"tool_call":
	// {"index","id","name","arguments"}} | {"refusal"} | {"finish_reason","usage"}), each
	// with header HeaderStreamSeq (0, 1, 2, ...), and ends with exactly one terminal
	// message without that header: the summary {"model","provider","finish_reason",
	// "usage"}, or an error reply (see ReplyError). A gap in HeaderStreamSeq means a
	// message was lost (slow consumer); the caller should treat the stream as failed.
	SubjectInferenceStream = "mxp.inference.stream"

	// SubjectInferenceModels is request/reply: {} → [{"id","provider","alias_of",
	// "context_window"}].
	SubjectInferenceModels = "mxp.inference.models"

	// HeaderStreamSeq numbers the chunk messages of a stream from 0; the terminal
	// message has none.
	HeaderStreamSeq = "Mxp-Stream-Seq"

	// StreamCancelSuffix ends a SubjectInferenceStream request early: a caller that stops
	// reading before the terminal message publishes an empty message to its reply inbox
	// followed by this suffix; the service then cancels the request's context and publishes
	// nothing more of it. A cancel that overtakes the service's taking the request is lost;
	// the request's deadline bounds the work then.
	StreamCancelSuffix = ".cancel"
)
