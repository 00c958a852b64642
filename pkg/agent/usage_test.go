package agent

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// normalizeCode drops indentation and blank lines, so a snippet matches the body of the
// Example function it was taken from.
func normalizeCode(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestUsageSnippets checks that every Go snippet in docs/usage.md is code from
// the examples of this package, llm and memory, so the guide only shows code that compiles
// and runs.
func TestUsageSnippets(t *testing.T) {
	doc, err := os.ReadFile("../../docs/usage.md")
	if err != nil {
		t.Fatalf("reading the guide: %v", err)
	}
	var all []byte
	for _, name := range []string{"example_test.go", "example_mesh_test.go", "llm/example_test.go", "llm/example_mesh_test.go", "memory/example_test.go"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	code := normalizeCode(string(all))
	blocks := goBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d Go snippets in docs/usage.md", len(blocks))
	}
	for i, b := range blocks {
		if !strings.Contains(code, normalizeCode(b[1])) {
			t.Errorf("snippet %d of docs/usage.md is not in the examples:\n%s", i+1, b[1])
		}
	}
}
