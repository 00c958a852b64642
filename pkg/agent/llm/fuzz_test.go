package llm

import (
	"reflect"
	"testing"
)

// FuzzSchemaTags builds a struct type whose fields carry arbitrary tags and derives its
// schema: the tag parser must return a schema or an error, never panic, and whatever it
// accepts must compile as a JSON Schema.
func FuzzSchemaTags(f *testing.F) {
	seeds := []string{
		`json:"n" mxp:"min=1,max=3"`,
		`json:"s,omitempty" enum:"a,b" pattern:"^[a-z]+$"`,
		`json:"s" mxp:"minLength=-1"`,
		`mxp:"required,optional,format=email"`,
		`json:"-"`,
		`json:",omitzero" desc:"x"`,
		`pattern:"("`,
		`enum:"1,,2" mxp:"maxItems=1"`,
	}
	kinds := []reflect.Type{reflect.TypeFor[int](), reflect.TypeFor[string](), reflect.TypeFor[[]float64](), reflect.TypeFor[*bool](), reflect.TypeFor[map[string]int]()}
	for i, s := range seeds {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, tag string, kind uint8) {
		typ := reflect.StructOf([]reflect.StructField{{Name: "F", Type: kinds[int(kind)%len(kinds)], Tag: reflect.StructTag(tag)}})
		schema, err := schemaForType(typ)
		if err != nil {
			return
		}
		// A pattern that is not a valid regexp is caught when the schema is compiled.
		_, _ = compileSchema("fuzz", schema)
	})
}
