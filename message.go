package warden

// EventModelOutputRejected records a model answer Warden could not use
// (empty, or no usable tool call); the model is told and may try again.
const EventModelOutputRejected EventType = "model_output_rejected"

// EventRunContinued records that a run continued as new (a fresh Temporal
// run with the same workflow ID) to keep its history small.
const EventRunContinued EventType = "run_continued"

// Message roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one entry of a run's conversation with the model.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content,omitempty"`
	// ToolCalls are the calls an assistant message asks for.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID links a tool message to the call it answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
	// Name is the tool name of a tool message.
	Name string `json:"name,omitempty"`
	// ContentRef references a long tool output stored outside the workflow
	// history; Content then holds a preview (see activities.Preview).
	ContentRef string `json:"content_ref,omitempty"`
}

// ModelRequest is one model call.
type ModelRequest struct {
	Model    string     `json:"model"`
	Messages []Message  `json:"messages"`
	Tools    []ToolSpec `json:"tools,omitempty"`
	// MaxOutputTokens caps the completion; zero means the provider default.
	MaxOutputTokens int `json:"max_output_tokens,omitempty"`
}

// ModelResponse is the model's answer: text, tool calls, or both.
type ModelResponse struct {
	// Model is the model that answered, as the provider reports it.
	Model string `json:"model"`
	// ID is the provider's ID of the answer (gen_ai.response.id in traces).
	ID           string     `json:"id,omitempty"`
	Content      string     `json:"content,omitempty"`
	ToolCalls    []ToolCall `json:"tool_calls,omitempty"`
	Usage        Usage      `json:"usage"`
	FinishReason string     `json:"finish_reason,omitempty"`
}
