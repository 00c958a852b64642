package memory

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadCheckpoint feeds arbitrary bytes as a checkpoint file: loading must fail with an
// error or succeed, never panic.
func FuzzLoadCheckpoint(f *testing.F) {
	f.Add([]byte(`{"version":1,"state":{"goal":"x"},"conversation":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"version":1,"state":null}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	path := filepath.Join(f.TempDir(), "ckpt")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var state map[string]any
		conv := NewRing[testMessage](4)
		if _, err := LoadCheckpoint(path, &state, conv); err == nil && conv.Len() > 4 {
			t.Fatalf("ring over capacity: %d", conv.Len())
		}
	})
}

// testMessage stands for a conversation turn (llm.Message in an agent), which this
// package does not know.
type testMessage struct {
	Role    string `json:"role"`
	Content string `json:"content,omitempty"`
}
