package provider

import api "github.com/mxp-mesh/mesh/pkg/api/inference"

// The provider-neutral request, message and stream types are the inference wire contract,
// defined once in pkg/api/inference (which the SDK imports without this package). These
// aliases keep the adapters' code unchanged; new code may use either name.
type (
	Role           = api.Role
	Message        = api.Message
	ToolCall       = api.ToolCall
	Tool           = api.Tool
	ToolChoice     = api.ToolChoice
	ResponseFormat = api.ResponseFormat
	Request        = api.Request
	FinishReason   = api.FinishReason
	Usage          = api.Usage
	ToolCallDelta  = api.ToolCallDelta
	Chunk          = api.Chunk
	Response       = api.Response
	Accumulator    = api.Accumulator
	Stream         = api.Stream
	Buffered       = api.Buffered
	ModelAdapter   = api.ModelAdapter
)

// The roles of a conversation (see api.Role).
const (
	RoleSystem    = api.RoleSystem
	RoleUser      = api.RoleUser
	RoleAssistant = api.RoleAssistant
	RoleTool      = api.RoleTool
)

// ToolChoice modes (see api.ToolChoice).
const (
	ToolChoiceAuto     = api.ToolChoiceAuto
	ToolChoiceNone     = api.ToolChoiceNone
	ToolChoiceRequired = api.ToolChoiceRequired
	ToolChoiceTool     = api.ToolChoiceTool
)

// Response format types (see api.ResponseFormat).
const (
	FormatText       = api.FormatText
	FormatJSONObject = api.FormatJSONObject
	FormatJSONSchema = api.FormatJSONSchema
)

// Finish reasons, normalised across providers (see api.FinishReason).
const (
	FinishStop          = api.FinishStop
	FinishLength        = api.FinishLength
	FinishToolCalls     = api.FinishToolCalls
	FinishContentFilter = api.FinishContentFilter
	FinishRefusal       = api.FinishRefusal
)
