package edge

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Many callers creating the same key file at once all get the one key written there, and
// none reads the file half written (`mxp agent echo --count` sets up 64 connections at
// once, each loading the client key).
func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "sub", "client.key")
		const n = 32
		keys := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				k, _, err := LoadOrCreateKey(path)
				keys[i], errs[i] = k.Reveal(), err
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, errs[i])
			}
			if keys[i] != keys[0] {
				t.Fatalf("round %d: callers got different keys", round)
			}
		}
		k, created, err := LoadOrCreateKey(path)
		if err != nil || created || k.Reveal() != keys[0] {
			t.Fatalf("round %d: reloaded %v created=%v err=%v, want the shared key", round, k, created, err)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("round %d: key file mode %v, %v", round, st.Mode(), err)
		}
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".key-*"))
		if len(left) != 0 {
			t.Fatalf("round %d: temporary files left: %v", round, left)
		}
	}
}
