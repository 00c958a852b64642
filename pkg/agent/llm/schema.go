package llm

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Struct tags read by SchemaOf. Field names come from the `json` tag exactly as
// encoding/json sees them (a `json:"-"` field is left out, embedded structs are flattened).
//
//	desc:"text"        the property's description, shown to the model
//	enum:"a,b,c"       the allowed values, parsed as the field's type (strings, numbers, bools)
//	pattern:"^[a-z]+$" a regular expression a string must match
//	mxp:"…"            comma-separated options:
//	    required         the property must be present (the default for non-pointer fields)
//	    optional         the property may be absent (the default for pointers and omitempty)
//	    min=N, max=N     inclusive bounds for numbers
//	    minLength=N, maxLength=N   bounds on a string's length
//	    minItems=N, maxItems=N     bounds on a slice's length
//	    format=F         a JSON Schema format for strings (date-time, email, uri, uuid, …)
//
// A field is required unless it is a pointer, its json tag says omitempty or omitzero, or
// mxp:"optional" is set; mxp:"required" makes any field required. Objects derived from
// structs forbid unknown properties (additionalProperties: false).
//
// Types map as: bool → boolean; signed integers → integer; unsigned integers → integer with
// minimum 0; floats → number; string → string; []byte → base64 string; time.Time → string
// (date-time); slices and arrays → array; map[string]T → object of T; struct → object;
// pointer → its element (optional); interface{} and json.RawMessage → any value.
// Channels, functions, complex numbers, maps with non-string keys and recursive types are
// rejected with an error.

// schemaNode is one JSON Schema object; its field order is the order of the JSON output.
type schemaNode struct {
	Type                 string      `json:"type,omitempty"`
	Description          string      `json:"description,omitempty"`
	Properties           *properties `json:"properties,omitempty"`
	Required             []string    `json:"required,omitempty"`
	AdditionalProperties any         `json:"additionalProperties,omitempty"`
	Items                *schemaNode `json:"items,omitempty"`
	Enum                 []any       `json:"enum,omitempty"`
	Minimum              *float64    `json:"minimum,omitempty"`
	Maximum              *float64    `json:"maximum,omitempty"`
	MinLength            *int        `json:"minLength,omitempty"`
	MaxLength            *int        `json:"maxLength,omitempty"`
	MinItems             *int        `json:"minItems,omitempty"`
	MaxItems             *int        `json:"maxItems,omitempty"`
	Pattern              string      `json:"pattern,omitempty"`
	Format               string      `json:"format,omitempty"`
	ContentEncoding      string      `json:"contentEncoding,omitempty"`
}

type property struct {
	name   string
	schema *schemaNode
}

// properties keeps struct field order in the JSON output, so schemas are stable and
// readable.
type properties []property

func (p *properties) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, prop := range *p {
		if i > 0 {
			buf = append(buf, ',')
		}
		name, err := json.Marshal(prop.name)
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(prop.schema)
		if err != nil {
			return nil, err
		}
		buf = append(append(append(buf, name...), ':'), body...)
	}
	return append(buf, '}'), nil
}

// SchemaOf derives the JSON Schema (draft 2020-12 keywords) of T from its Go type and
// struct tags; see the tag list above. T must be a struct or a pointer to one.
func SchemaOf[T any]() (json.RawMessage, error) {
	return schemaForType(reflect.TypeFor[T]())
}

func schemaForType(t reflect.Type) (json.RawMessage, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("llm: schema root must be a struct, got %s", t)
	}
	b := &schemaBuilder{visiting: map[reflect.Type]bool{}}
	node, err := b.build(t, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(node)
}

var (
	timeType       = reflect.TypeFor[time.Time]()
	rawMessageType = reflect.TypeFor[json.RawMessage]()
)

type schemaBuilder struct {
	visiting map[reflect.Type]bool
}

func (b *schemaBuilder) build(t reflect.Type, path string) (*schemaNode, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return &schemaNode{Type: "string", Format: "date-time"}, nil
	case t == rawMessageType:
		return &schemaNode{}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return &schemaNode{Type: "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &schemaNode{Type: "integer"}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		zero := 0.0
		return &schemaNode{Type: "integer", Minimum: &zero}, nil
	case reflect.Float32, reflect.Float64:
		return &schemaNode{Type: "number"}, nil
	case reflect.String:
		return &schemaNode{Type: "string"}, nil
	case reflect.Interface:
		return &schemaNode{}, nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return &schemaNode{Type: "string", ContentEncoding: "base64"}, nil
		}
		items, err := b.build(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		n := &schemaNode{Type: "array", Items: items}
		if t.Kind() == reflect.Array {
			l := t.Len()
			n.MinItems, n.MaxItems = &l, &l
		}
		return n, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("llm: schema: %s: map keys must be strings, got %s", pathOr(path), t.Key())
		}
		vals, err := b.build(t.Elem(), path+"{}")
		if err != nil {
			return nil, err
		}
		return &schemaNode{Type: "object", AdditionalProperties: vals}, nil
	case reflect.Struct:
		return b.buildStruct(t, path)
	}
	return nil, fmt.Errorf("llm: schema: %s: unsupported type %s", pathOr(path), t)
}

func pathOr(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

func (b *schemaBuilder) buildStruct(t reflect.Type, path string) (*schemaNode, error) {
	if b.visiting[t] {
		return nil, fmt.Errorf("llm: schema: %s: recursive type %s is not supported", pathOr(path), t)
	}
	b.visiting[t] = true
	defer delete(b.visiting, t)

	n := &schemaNode{Type: "object", Properties: &properties{}, AdditionalProperties: false}
	if err := b.addFields(n, t, path); err != nil {
		return nil, err
	}
	return n, nil
}

// addFields adds t's exported fields to n, flattening embedded structs as encoding/json
// does.
func (b *schemaBuilder) addFields(n *schemaNode, t reflect.Type, path string) error {
	for i := range t.NumField() {
		f := t.Field(i)
		jsonTag, hasTag := f.Tag.Lookup("json")
		name, opts, _ := strings.Cut(jsonTag, ",")
		if name == "-" && opts == "" {
			continue
		}
		ft := f.Type
		if f.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if err := b.addFields(n, et, path); err != nil {
					return err
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" || !hasTag {
			name = f.Name
		}
		fieldPath := name
		if path != "" {
			fieldPath = path + "." + name
		}
		prop, err := b.build(ft, fieldPath)
		if err != nil {
			return err
		}
		required := ft.Kind() != reflect.Pointer && !hasOpt(opts, "omitempty") && !hasOpt(opts, "omitzero")
		required, err = applyTags(prop, f.Tag, ft, fieldPath, required)
		if err != nil {
			return err
		}
		*n.Properties = append(*n.Properties, property{name: name, schema: prop})
		if required {
			n.Required = append(n.Required, name)
		}
	}
	return nil
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// applyTags reads desc, enum, pattern and mxp tags into prop and returns whether the field
// is required.
func applyTags(prop *schemaNode, tag reflect.StructTag, ft reflect.Type, path string, required bool) (bool, error) {
	prop.Description = tag.Get("desc")
	base := ft
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if p, ok := tag.Lookup("pattern"); ok {
		if prop.Type != "string" {
			return false, fmt.Errorf("llm: schema: %s: pattern on a %s field", path, prop.Type)
		}
		prop.Pattern = p
	}
	if e, ok := tag.Lookup("enum"); ok {
		for v := range strings.SplitSeq(e, ",") {
			parsed, err := parseScalar(prop.Type, strings.TrimSpace(v))
			if err != nil {
				return false, fmt.Errorf("llm: schema: %s: enum value %q: %w", path, v, err)
			}
			prop.Enum = append(prop.Enum, parsed)
		}
	}
	mxp, ok := tag.Lookup("mxp")
	if !ok {
		return required, nil
	}
	for opt := range strings.SplitSeq(mxp, ",") {
		key, val, hasVal := strings.Cut(strings.TrimSpace(opt), "=")
		if err := applyOption(prop, key, val, hasVal, &required); err != nil {
			return false, fmt.Errorf("llm: schema: %s: mxp tag %q: %w", path, opt, err)
		}
	}
	return required, nil
}

func applyOption(prop *schemaNode, key, val string, hasVal bool, required *bool) error {
	switch key {
	case "":
		return nil
	case "required", "optional":
		if hasVal {
			return fmt.Errorf("%s takes no value", key)
		}
		*required = key == "required"
		return nil
	case "format":
		if prop.Type != "string" {
			return fmt.Errorf("format on a %s", typeName(prop))
		}
		prop.Format = val
		return nil
	case "min", "max":
		if prop.Type != "integer" && prop.Type != "number" {
			return fmt.Errorf("%s on a %s", key, typeName(prop))
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		if key == "min" {
			prop.Minimum = &f
		} else {
			prop.Maximum = &f
		}
		return nil
	case "minLength", "maxLength", "minItems", "maxItems":
		wantType := "string"
		if strings.HasSuffix(key, "Items") {
			wantType = "array"
		}
		if prop.Type != wantType {
			return fmt.Errorf("%s on a %s", key, typeName(prop))
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("not a non-negative integer")
		}
		switch key {
		case "minLength":
			prop.MinLength = &n
		case "maxLength":
			prop.MaxLength = &n
		case "minItems":
			prop.MinItems = &n
		default:
			prop.MaxItems = &n
		}
		return nil
	}
	return fmt.Errorf("unknown option %q", key)
}

func typeName(n *schemaNode) string {
	if n.Type == "" {
		return "value of any type"
	}
	return n.Type
}

func parseScalar(typ, v string) (any, error) {
	switch typ {
	case "string":
		return v, nil
	case "integer":
		return strconv.ParseInt(v, 10, 64)
	case "number":
		return strconv.ParseFloat(v, 64)
	case "boolean":
		return strconv.ParseBool(v)
	}
	return nil, fmt.Errorf("enum on a %s field", typ)
}
