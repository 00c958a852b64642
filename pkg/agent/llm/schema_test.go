package llm

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type address struct {
	Street string `json:"street" desc:"street and number"`
	Zip    string `json:"zip,omitempty" pattern:"^[0-9]{5}$"`
}

type Base struct {
	TraceTag string `json:"trace_tag,omitempty"`
}

type bookArgs struct {
	Base
	City     string            `json:"city" desc:"the city to book in" mxp:"minLength=1,maxLength=40"`
	Nights   int               `json:"nights" mxp:"min=1,max=30"`
	Guests   uint8             `json:"guests"`
	Budget   *float64          `json:"budget" desc:"per night, in euros"`
	Room     string            `json:"room" enum:"single,double,suite"`
	Stars    int               `json:"stars,omitempty" enum:"3,4,5"`
	Pets     bool              `json:"pets"`
	Tags     []string          `json:"tags,omitempty" mxp:"maxItems=5"`
	Address  address           `json:"address"`
	Extras   map[string]int    `json:"extras,omitempty"`
	Arrive   time.Time         `json:"arrive"`
	Note     *string           `json:"note" mxp:"required"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Any      any               `json:"any,omitempty"`
	Photo    []byte            `json:"photo,omitempty"`
	Pair     [2]int            `json:"pair,omitempty"`
	Email    string            `json:"email,omitempty" mxp:"format=email,optional"`
	Ignored  string            `json:"-"`
	internal string            // unexported fields are not part of the schema
	Labels   map[string]string `json:"labels" mxp:"optional"`
	NoTag    int
}

func TestSchemaOfStruct(t *testing.T) {
	_ = bookArgs{internal: "unexported fields are ignored"}
	raw, err := SchemaOf[bookArgs]()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	props := got["properties"].(map[string]any)
	prop := func(name string) map[string]any {
		p, ok := props[name].(map[string]any)
		if !ok {
			t.Fatalf("property %q missing in %s", name, raw)
		}
		return p
	}
	tests := []struct {
		name string
		key  string
		want any
	}{
		{"trace_tag", "type", "string"}, // flattened from the embedded struct
		{"city", "description", "the city to book in"},
		{"city", "minLength", 1.0},
		{"city", "maxLength", 40.0},
		{"nights", "type", "integer"},
		{"nights", "minimum", 1.0},
		{"nights", "maximum", 30.0},
		{"guests", "minimum", 0.0},
		{"budget", "type", "number"},
		{"budget", "description", "per night, in euros"},
		{"room", "enum", []any{"single", "double", "suite"}},
		{"stars", "enum", []any{3.0, 4.0, 5.0}},
		{"pets", "type", "boolean"},
		{"tags", "type", "array"},
		{"tags", "items", map[string]any{"type": "string"}},
		{"tags", "maxItems", 5.0},
		{"address", "additionalProperties", false},
		{"address", "required", []any{"street"}},
		{"extras", "additionalProperties", map[string]any{"type": "integer"}},
		{"arrive", "format", "date-time"},
		{"photo", "contentEncoding", "base64"},
		{"pair", "minItems", 2.0},
		{"email", "format", "email"},
		{"NoTag", "type", "integer"},
	}
	for _, tt := range tests {
		if g := prop(tt.name)[tt.key]; !reflect.DeepEqual(g, tt.want) {
			t.Errorf("%s.%s = %#v, want %#v", tt.name, tt.key, g, tt.want)
		}
	}
	if zip := prop("address")["properties"].(map[string]any)["zip"].(map[string]any); zip["pattern"] != "^[0-9]{5}$" {
		t.Errorf("nested pattern = %v", zip["pattern"])
	}
	for _, absent := range []string{"Ignored", "internal", "Base"} {
		if _, ok := props[absent]; ok {
			t.Errorf("property %q must not be in the schema", absent)
		}
	}
	if len(prop("raw")) != 0 || len(prop("any")) != 0 {
		t.Errorf("raw/any should accept any value: %v %v", prop("raw"), prop("any"))
	}
	wantReq := []any{"city", "nights", "guests", "room", "pets", "address", "arrive", "note", "NoTag"}
	if !reflect.DeepEqual(got["required"], wantReq) {
		t.Errorf("required = %v, want %v", got["required"], wantReq)
	}
	if got["additionalProperties"] != false || got["type"] != "object" {
		t.Errorf("root = %v", got)
	}
	// Property order follows the struct, so the schema text is stable.
	if i, j := strings.Index(string(raw), `"city"`), strings.Index(string(raw), `"nights"`); i < 0 || i > j {
		t.Errorf("properties out of struct order: %s", raw)
	}
}

type recursive struct {
	Children []recursive `json:"children"`
}

func TestSchemaOfRejects(t *testing.T) {
	tests := []struct {
		name string
		fn   func() error
		want string
	}{
		{"not a struct", func() error { _, err := SchemaOf[int](); return err }, "root must be a struct"},
		{"recursive", func() error { _, err := SchemaOf[recursive](); return err }, "recursive type"},
		{"chan", func() error {
			_, err := SchemaOf[struct {
				C chan int `json:"c"`
			}]()
			return err
		}, "c: unsupported type chan int"},
		{"int map key", func() error {
			_, err := SchemaOf[struct {
				M map[int]string `json:"m"`
			}]()
			return err
		}, "map keys must be strings"},
		{"min on string", func() error {
			_, err := SchemaOf[struct {
				S string `json:"s" mxp:"min=1"`
			}]()
			return err
		}, "min on a string"},
		{"bad enum", func() error {
			_, err := SchemaOf[struct {
				N int `json:"n" enum:"1,two"`
			}]()
			return err
		}, `enum value "two"`},
		{"unknown option", func() error {
			_, err := SchemaOf[struct {
				N int `json:"n" mxp:"minimum=1"`
			}]()
			return err
		}, `unknown option "minimum"`},
		{"pattern on int", func() error {
			_, err := SchemaOf[struct {
				N int `json:"n" pattern:"x"`
			}]()
			return err
		}, "pattern on a integer"},
		{"bad length", func() error {
			_, err := SchemaOf[struct {
				S string `json:"s" mxp:"maxLength=-1"`
			}]()
			return err
		}, "non-negative"},
		{"required with value", func() error {
			_, err := SchemaOf[struct {
				S string `json:"s" mxp:"required=yes"`
			}]()
			return err
		}, "takes no value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSchemaOfPointerRoot(t *testing.T) {
	a, err := SchemaOf[*address]()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SchemaOf[address]()
	if string(a) != string(b) {
		t.Fatalf("pointer root differs: %s vs %s", a, b)
	}
}
