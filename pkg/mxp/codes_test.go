package mxp

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// declaredCodes returns every ErrorCode constant declared in the package's source, so a
// code added without a status or documentation fails the tests below.
func declaredCodes(t *testing.T) map[string]ErrorCode {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ErrorCode{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "ErrorCode" {
					continue
				}
				for i, n := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						t.Fatalf("%s: not a string literal", n.Name)
					}
					v, _ := strconv.Unquote(lit.Value)
					out[n.Name] = ErrorCode(v)
				}
			}
		}
	}
	if len(out) < 30 {
		t.Fatalf("found %d ErrorCode constants; the parser missed some", len(out))
	}
	return out
}

// TestEveryCodeHasAStatusAndIsDocumented: each declared code is in the one code→status
// map and has a row in docs/errors.md; Codes lists exactly the declared codes.
func TestEveryCodeHasAStatusAndIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	declared := declaredCodes(t)
	seen := map[ErrorCode]string{}
	for name, c := range declared {
		if prev, dup := seen[c]; dup {
			t.Errorf("%s and %s are both %q", prev, name, string(c))
		}
		seen[c] = name
		if !c.Known() {
			t.Errorf("%s (%q) has no HTTP status", name, string(c))
		}
		if s := c.HTTPStatus(); s < 400 || s > 599 {
			t.Errorf("%s: status %d is not an error status", name, s)
		}
		if !strings.Contains(string(doc), "| `"+string(c)+"` | "+strconv.Itoa(c.HTTPStatus())+" |") {
			t.Errorf("docs/errors.md has no row \"| `%s` | %d |\"", string(c), c.HTTPStatus())
		}
	}
	if got := len(Codes()); got != len(declared) {
		t.Errorf("Codes() lists %d codes, the source declares %d", got, len(declared))
	}
}

// TestLegacyCodes: the old spellings of one idea read as today's code, with its status,
// and are not codes of their own.
func TestLegacyCodes(t *testing.T) {
	for old, want := range map[ErrorCode]ErrorCode{
		"payload_too_large": CodeTooLarge,
		"deadline_exceeded": CodeTimeout,
		"shutting_down":     CodeUnavailable,
		"bad_request":       CodeInvalidArgument,
		"invalid_json":      CodeInvalidPayload,
	} {
		if old.Known() {
			t.Errorf("%q is still a code of its own", old)
		}
		if got := old.Canonical(); got != want {
			t.Errorf("%q.Canonical() = %q, want %q", old, got, want)
		}
		if old.HTTPStatus() != want.HTTPStatus() {
			t.Errorf("%q maps to %d, %q to %d", old, old.HTTPStatus(), want, want.HTTPStatus())
		}
		p, err := DecodeErrorPayload([]byte(`{"error":"x","code":"` + string(old) + `"}`))
		if err != nil || p.Code != want {
			t.Errorf("DecodeErrorPayload(%q) = %+v, %v; want code %q", old, p, err, want)
		}
	}
	if c := ErrorCode("a_service_code"); c.Canonical() != c || c.HTTPStatus() != 500 || c.Known() {
		t.Errorf("an unknown code must pass unchanged and map to 500")
	}
}
