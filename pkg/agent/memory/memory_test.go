package memory

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestRing(t *testing.T) {
	tests := []struct {
		name   string
		cap    int
		push   []int
		want   []int
		last2  []int
		wantLn int
	}{
		{"empty", 3, nil, []int{}, []int{}, 0},
		{"partial", 3, []int{1, 2}, []int{1, 2}, []int{1, 2}, 2},
		{"exactly full", 3, []int{1, 2, 3}, []int{1, 2, 3}, []int{2, 3}, 3},
		{"wraps", 3, []int{1, 2, 3, 4, 5}, []int{3, 4, 5}, []int{4, 5}, 3},
		{"wraps many times", 2, []int{1, 2, 3, 4, 5, 6, 7}, []int{6, 7}, []int{6, 7}, 2},
		{"capacity clamps to 1", 0, []int{1, 2}, []int{2}, []int{2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRing[int](tt.cap)
			for _, v := range tt.push {
				r.Push(v)
			}
			if got := r.Items(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Items = %v, want %v", got, tt.want)
			}
			if got := r.Last(2); !reflect.DeepEqual(got, tt.last2) {
				t.Fatalf("Last(2) = %v, want %v", got, tt.last2)
			}
			if r.Len() != tt.wantLn {
				t.Fatalf("Len = %d", r.Len())
			}
		})
	}
	r := NewRing[int](3)
	r.Push(1, 2, 3, 4)
	r.Reset(9)
	if got := r.Items(); !reflect.DeepEqual(got, []int{9}) || r.Cap() != 3 {
		t.Fatalf("after Reset: %v", got)
	}
}

func TestRingConcurrent(t *testing.T) {
	r := NewRing[int](64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				r.Push(g*1000 + i)
				_ = r.Last(4)
			}
		}()
	}
	wg.Wait()
	if r.Len() != 64 {
		t.Fatalf("Len = %d", r.Len())
	}
}

type plannerState struct {
	Goal  string   `json:"goal"`
	Done  []string `json:"done"`
	Count int      `json:"count"`
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.ckpt")
	conv := NewRing[testMessage](4)
	conv.Push(testMessage{Role: "user", Content: "plan a trip"}, testMessage{Role: "assistant", Content: "where to?"})
	want := plannerState{Goal: "trip", Done: []string{"ask"}, Count: 2}
	if err := SaveCheckpoint(path, want, conv); err != nil {
		t.Fatal(err)
	}
	// Overwrite: the second save replaces the first atomically.
	want.Count = 3
	conv.Push(testMessage{Role: "user", Content: "Lisbon"})
	if err := SaveCheckpoint(path, want, conv); err != nil {
		t.Fatal(err)
	}
	var got plannerState
	restored := NewRing[testMessage](4)
	restored.Push(testMessage{Role: "user", Content: "stale"})
	savedAt, err := LoadCheckpoint(path, &got, restored)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || savedAt.IsZero() {
		t.Fatalf("state = %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(restored.Items(), conv.Items()) {
		t.Fatalf("conversation = %+v, want %+v", restored.Items(), conv.Items())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
}

func TestCheckpointErrors(t *testing.T) {
	dir := t.TempDir()
	var s plannerState
	if _, err := LoadCheckpoint[testMessage](filepath.Join(dir, "missing"), &s, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	tests := []struct {
		name, content, want string
	}{
		{"torn", `{"version":1,"state":{"goal":`, "corrupt"},
		{"future version", `{"version":2,"state":{}}`, "version 2"},
		{"state mismatch", `{"version":1,"state":{"count":"x"}}`, "decoding state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadCheckpoint[testMessage](p, &s, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if err := SaveCheckpoint[testMessage](filepath.Join(dir, "x"), make(chan int), nil); err == nil {
		t.Fatal("unencodable state accepted")
	}
	if err := SaveCheckpoint[testMessage](filepath.Join(dir, "no-such-dir", "x"), s, nil); err == nil {
		t.Fatal("missing directory accepted")
	}
}
