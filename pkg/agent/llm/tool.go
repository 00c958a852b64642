package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ToolSpec is what a model and the mesh's tool catalogue see of a tool: its name, what it
// does, the JSON Schema of its arguments, and the capabilities a caller needs to use it.
type ToolSpec struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	Parameters   json.RawMessage `json:"parameters"`
	Capabilities []string        `json:"capabilities,omitempty"`
}

// ModelTool returns the spec in the shape a model request carries it (capabilities are
// for the mesh, not the model).
func (s ToolSpec) ModelTool() inference.Tool {
	return inference.Tool{Name: s.Name, Description: s.Description, Parameters: s.Parameters}
}

// Tool is a Go function callable with JSON arguments that are checked against a JSON
// Schema first. Build one with NewTool; a Tool is safe for concurrent use.
type Tool struct {
	spec      ToolSpec
	validator *jsonschema.Schema
	invoke    func(ctx context.Context, args []byte) (any, error)
}

// ToolOption configures NewTool.
type ToolOption func(*Tool)

// WithCapabilities declares the capabilities a caller needs to use the tool (for example
// "files.read"). They travel in the tool's ToolSpec (Toolbox.Specs), the shape a tools
// catalogue takes; the running agent advertises the tool itself as the capability
// "tool.<name>" (see ToolCapabilityPrefix).
func WithCapabilities(capabilities ...string) ToolOption {
	return func(t *Tool) { t.spec.Capabilities = append(t.spec.Capabilities, capabilities...) }
}

var toolNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// NewTool turns fn into a Tool named name. The argument schema is derived from Args with
// SchemaOf (see its tag list); Args must be a struct. The result R is encoded as JSON.
// The name is 1–64 letters, digits, '_', '.' or '-', which every model provider accepts.
func NewTool[Args, R any](name, description string, fn func(context.Context, Args) (R, error), opts ...ToolOption) (*Tool, error) {
	if !toolNameRE.MatchString(name) {
		return nil, fmt.Errorf("llm: tool name %q: want 1-64 of [A-Za-z0-9_.-]", name)
	}
	if fn == nil {
		return nil, fmt.Errorf("llm: tool %q: nil function", name)
	}
	schema, err := SchemaOf[Args]()
	if err != nil {
		return nil, fmt.Errorf("llm: tool %q: %w", name, err)
	}
	validator, err := compileSchema(name, schema)
	if err != nil {
		return nil, err
	}
	t := &Tool{
		spec:      ToolSpec{Name: name, Description: description, Parameters: schema},
		validator: validator,
		invoke: func(ctx context.Context, raw []byte) (any, error) {
			var args Args
			if err := json.Unmarshal(raw, &args); err != nil {
				return nil, agent.Errorf(agent.CodeInvalidArgument, "tool %q: arguments: %v", name, err)
			}
			return fn(ctx, args)
		},
	}
	for _, o := range opts {
		o(t)
	}
	return t, nil
}

func compileSchema(name string, schema []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("llm: tool %q: schema: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	url := "mem:///tools/" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("llm: tool %q: schema: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("llm: tool %q: schema: %w", name, err)
	}
	return s, nil
}

// Spec returns the tool's name, description, argument schema and capabilities.
func (t *Tool) Spec() ToolSpec { return t.spec }

// Name returns the tool's name.
func (t *Tool) Name() string { return t.spec.Name }

// Call validates args against the tool's schema, decodes them into the function's argument
// struct, runs the function and returns its result as JSON. Empty args mean {}. Invalid
// arguments give an *agent.Error with agent.CodeInvalidArgument before the function runs; a panic in
// the function gives agent.CodeInternal; an error from the function is returned as is.
func (t *Tool) Call(ctx context.Context, args json.RawMessage) (out json.RawMessage, err error) {
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return nil, agent.Errorf(agent.CodeInvalidArgument, "tool %q: arguments are not JSON: %v", t.spec.Name, err)
	}
	if err := t.validator.Validate(inst); err != nil {
		return nil, &agent.Error{Code: agent.CodeInvalidArgument, Message: fmt.Sprintf("tool %q: %v", t.spec.Name, err), Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, &agent.Error{Code: agent.CodeInternal, Message: fmt.Sprintf("tool %q panicked: %v", t.spec.Name, p),
				Err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())}
		}
	}()
	res, err := t.invoke(ctx, args)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, agent.Errorf(agent.CodeInternal, "tool %q: encoding result: %v", t.spec.Name, err)
	}
	return b, nil
}

// Toolbox is a named set of tools. It is safe for concurrent use.
type Toolbox struct {
	mu    sync.RWMutex
	tools map[string]*Tool
}

// NewToolbox returns a toolbox holding tools; it fails on a nil tool or a duplicate name.
func NewToolbox(tools ...*Tool) (*Toolbox, error) {
	b := &Toolbox{tools: make(map[string]*Tool, len(tools))}
	for _, t := range tools {
		if err := b.Add(t); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Add registers t; a second tool with the same name is an error.
func (b *Toolbox) Add(t *Tool) error {
	if t == nil {
		return fmt.Errorf("llm: nil tool")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tools == nil {
		b.tools = make(map[string]*Tool)
	}
	if _, dup := b.tools[t.spec.Name]; dup {
		return fmt.Errorf("llm: tool %q registered twice", t.spec.Name)
	}
	b.tools[t.spec.Name] = t
	return nil
}

// Get returns the tool named name.
func (b *Toolbox) Get(name string) (*Tool, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.tools[name]
	return t, ok
}

// Specs returns the specs of every tool, sorted by name.
func (b *Toolbox) Specs() []ToolSpec {
	b.mu.RLock()
	specs := make([]ToolSpec, 0, len(b.tools))
	for _, t := range b.tools {
		specs = append(specs, t.spec)
	}
	b.mu.RUnlock()
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}

// ToolCapabilityPrefix prefixes the capability under which an agent advertises each tool
// it serves: an agent with the tool "weather" registers "tool.weather", so other agents
// find tool providers with Discover.
const ToolCapabilityPrefix = "tool."

// Capabilities returns "tool.<name>" for every tool, sorted by name: what an agent serving
// the toolbox advertises (see Advertise).
func (b *Toolbox) Capabilities() []string {
	specs := b.Specs()
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = ToolCapabilityPrefix + s.Name
	}
	return out
}

// Advertise makes the agent a register the capability of every tool in b (Capabilities)
// along with its own, at once if it is running. Call it again after adding tools. The
// error is agent.Advertise's (more than mxp.MaxCapabilities in all).
func (b *Toolbox) Advertise(a *agent.Agent) error { return a.Advertise(b.Capabilities()...) }

// ModelTools returns the tools in the shape a model request carries them, sorted by name.
func (b *Toolbox) ModelTools() []inference.Tool {
	specs := b.Specs()
	out := make([]inference.Tool, len(specs))
	for i, s := range specs {
		out[i] = s.ModelTool()
	}
	return out
}

// Call runs the tool named name with args; an unknown name gives agent.CodeNotFound.
func (b *Toolbox) Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error) {
	t, ok := b.Get(name)
	if !ok {
		return nil, agent.Errorf(agent.CodeNotFound, "no tool named %q", name)
	}
	return t.Call(ctx, args)
}
