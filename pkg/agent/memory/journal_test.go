package memory

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type entry struct {
	N int    `json:"n"`
	S string `json:"s,omitempty"`
}

func replayAll(t testing.TB, j *Journal) []entry {
	t.Helper()
	var out []entry
	if err := j.Replay(func(raw json.RawMessage) error {
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJournalPolicies(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			dir := t.TempDir()
			j, err := OpenJournal(dir, JournalOptions{Sync: p, SyncInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				if err := j.Append(entry{N: i}); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if err := j.Append(entry{}); !errors.Is(err, errJournalClosed) {
				t.Fatalf("append after close: %v", err)
			}
			// Reopen: everything is replayed, and appends continue after it.
			j2, err := OpenJournal(dir, JournalOptions{Sync: p})
			if err != nil {
				t.Fatal(err)
			}
			defer j2.Close()
			if err := j2.Append(entry{N: 50}); err != nil {
				t.Fatal(err)
			}
			got := replayAll(t, j2)
			if len(got) != 51 {
				t.Fatalf("replayed %d entries, want 51", len(got))
			}
			for i, e := range got {
				if e.N != i {
					t.Fatalf("entry %d = %d", i, e.N)
				}
			}
		})
	}
}

func TestJournalRotationKeepsNewestFiles(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir, JournalOptions{Sync: SyncNever, MaxFileBytes: 100, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	pad := strings.Repeat("x", 20)
	for i := range 40 {
		if err := j.Append(entry{N: i, S: pad}); err != nil {
			t.Fatal(err)
		}
	}
	seqs, err := journalFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 3 {
		t.Fatalf("files kept = %v, want 3", seqs)
	}
	for _, s := range seqs {
		st, err := os.Stat(j.path(s))
		if err != nil || st.Size() > 100 {
			t.Fatalf("file %d: size %d (limit 100), err %v", s, st.Size(), err)
		}
	}
	got := replayAll(t, j)
	if len(got) == 0 || got[len(got)-1].N != 39 {
		t.Fatalf("replay after rotation = %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i].N != got[i-1].N+1 {
			t.Fatalf("gap in kept entries: %v", got)
		}
	}
}

func TestJournalTornTail(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		want  []int
		after string // file content after open + one append of {"n":9}
	}{
		{"torn partial line cut", "{\"n\":1}\n{\"n\":2}\n{\"n\":", []int{1, 2, 9}, "{\"n\":1}\n{\"n\":2}\n{\"n\":9}\n"},
		{"complete line without newline kept", "{\"n\":1}\n{\"n\":2}", []int{1, 2, 9}, "{\"n\":1}\n{\"n\":2}\n{\"n\":9}\n"},
		{"only a torn line", "{\"n", []int{9}, "{\"n\":9}\n"},
		{"clean", "{\"n\":1}\n", []int{1, 9}, "{\"n\":1}\n{\"n\":9}\n"},
		{"empty", "", []int{9}, "{\"n\":9}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "journal-00000007.jsonl")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := OpenJournal(dir, JournalOptions{Sync: SyncAlways})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Append(entry{N: 9}); err != nil {
				t.Fatal(err)
			}
			got := replayAll(t, j)
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			var ns []int
			for _, e := range got {
				ns = append(ns, e.N)
			}
			if fmt.Sprint(ns) != fmt.Sprint(tt.want) {
				t.Fatalf("replayed %v, want %v", ns, tt.want)
			}
			data, _ := os.ReadFile(path)
			if string(data) != tt.after {
				t.Fatalf("file = %q, want %q", data, tt.after)
			}
		})
	}
}

func TestJournalCorruptionInsideFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "journal-00000001.jsonl"), []byte("{\"n\":1}\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "journal-notanumber.jsonl"), []byte("ignored"), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(dir, JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	n := 0
	err = j.Replay(func(json.RawMessage) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "journal-00000001.jsonl line 2: corrupt") || n != 1 {
		t.Fatalf("err = %v after %d entries", err, n)
	}
	stop := errors.New("stop")
	if err := j.Replay(func(json.RawMessage) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error lost: %v", err)
	}
	if err := j.Append(make(chan int)); err == nil {
		t.Fatal("unencodable entry accepted")
	}
}

func TestJournalConcurrentAppends(t *testing.T) {
	j, err := OpenJournal(t.TempDir(), JournalOptions{MaxFileBytes: 512, MaxFiles: 1000, SyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := j.Append(entry{N: g*100 + i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, e := range replayAll(t, j) {
		seen[e.N] = true
	}
	if len(seen) != 400 {
		t.Fatalf("replayed %d distinct entries, want 400", len(seen))
	}
}

// FuzzJournalOpenReplay writes arbitrary bytes as the newest journal file: opening and
// replaying must never panic, and after open the file always ends in a newline.
func FuzzJournalOpenReplay(f *testing.F) {
	for _, s := range []string{"", "{}\n", "{\"n\":1}\n{\"n\"", "\n\n", "x\n{}", "[1,2]\n\"s\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "journal-00000001.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := OpenJournal(dir, JournalOptions{Sync: SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		_ = j.Replay(func(raw json.RawMessage) error {
			if !json.Valid(raw) {
				t.Fatalf("replayed invalid JSON %q", raw)
			}
			return nil
		})
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(path)
		if len(after) > 0 && after[len(after)-1] != '\n' {
			t.Fatalf("file still torn: %q", after)
		}
	})
}

func BenchmarkJournalAppend(b *testing.B) {
	for _, p := range []struct {
		name   string
		policy SyncPolicy
	}{{"never", SyncNever}, {"interval", SyncInterval}, {"always", SyncAlways}} {
		b.Run(p.name, func(b *testing.B) {
			j, err := OpenJournal(b.TempDir(), JournalOptions{Sync: p.policy})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			e := entry{N: 1, S: strings.Repeat("m", 100)}
			b.ReportAllocs()
			for b.Loop() {
				if err := j.Append(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
