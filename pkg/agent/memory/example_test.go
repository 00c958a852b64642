package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mxp-mesh/mesh/pkg/agent/llm"
	"github.com/mxp-mesh/mesh/pkg/agent/memory"
)

// The snippets in docs/usage.md about memory are the bodies of these examples (agent's
// TestUsageSnippets checks it).

func ExampleRing() {
	conversation := memory.NewRing[llm.Message](3)
	for _, text := range []string{"one", "two", "three", "four"} {
		conversation.Push(llm.Message{Role: llm.RoleUser, Content: text})
	}
	for _, m := range conversation.Items() {
		fmt.Print(m.Content, " ")
	}
	fmt.Println()
	// Output:
	// two three four
}

func ExampleOpenJournal() {
	dir, err := os.MkdirTemp("", "journal")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	type Note struct {
		Seq  int    `json:"seq"`
		Text string `json:"text"`
	}
	j, err := memory.OpenJournal(dir, memory.JournalOptions{Sync: memory.SyncAlways})
	if err != nil {
		log.Fatal(err)
	}
	for i, text := range []string{"booted", "answered a call"} {
		if err := j.Append(Note{Seq: i, Text: text}); err != nil {
			log.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		log.Fatal(err)
	}

	// After a restart: replay what was written.
	j, err = memory.OpenJournal(dir, memory.JournalOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	err = j.Replay(func(entry json.RawMessage) error {
		var n Note
		if err := json.Unmarshal(entry, &n); err != nil {
			return err
		}
		fmt.Println(n.Seq, n.Text)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 0 booted
	// 1 answered a call
}

func ExampleSaveCheckpoint() {
	dir, err := os.MkdirTemp("", "checkpoint")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "planner.json")

	type PlannerState struct {
		Goal  string `json:"goal"`
		Steps int    `json:"steps"`
	}
	conversation := memory.NewRing[llm.Message](100)
	conversation.Push(llm.Message{Role: llm.RoleUser, Content: "plan a trip to Lisbon"})
	if err := memory.SaveCheckpoint(path, PlannerState{Goal: "Lisbon", Steps: 3}, conversation); err != nil {
		log.Fatal(err)
	}

	// A restarted agent carries on from the checkpoint.
	var state PlannerState
	restored := memory.NewRing[llm.Message](100)
	_, err = memory.LoadCheckpoint(path, &state, restored)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("first start")
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(state.Goal, state.Steps, restored.Items()[0].Content)
	// Output:
	// Lisbon 3 plan a trip to Lisbon
}

func ExampleLocalVectorStore() {
	ctx := context.Background()
	store := memory.NewLocalVectorStore(3)
	err := store.Upsert(ctx,
		memory.VectorDoc{ID: "cats", Vector: []float32{0.9, 0.1, 0}, Tags: []string{"animals"}},
		memory.VectorDoc{ID: "dogs", Vector: []float32{0.8, 0.3, 0}, Tags: []string{"animals"}},
		memory.VectorDoc{ID: "tax", Vector: []float32{0, 0.1, 0.9}, Tags: []string{"finance"}},
	)
	if err != nil {
		log.Fatal(err)
	}
	matches, err := store.Search(ctx, memory.VectorQuery{Vector: []float32{1, 0.2, 0}, K: 2, Tags: []string{"animals"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range matches {
		fmt.Printf("%s %.3f\n", m.ID, m.Score)
	}
	// Output:
	// cats 0.996
	// dogs 0.987
}
