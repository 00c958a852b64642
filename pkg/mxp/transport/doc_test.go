package transport

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocListsEveryFile keeps the layout in doc.go exact: every source file of the
// package is named there, and every file named there exists.
func TestDocListsEveryFile(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`\b[a-z0-9_]+\.go\b`).FindAllString(string(doc), -1) {
		named[m] = true
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	exists := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		exists[n] = true
		if n != "doc.go" && !named[n] {
			t.Errorf("%s is not in doc.go's layout", n)
		}
	}
	for n := range named {
		if !exists[n] {
			t.Errorf("doc.go names %s, which is not a source file of the package", n)
		}
	}
}
