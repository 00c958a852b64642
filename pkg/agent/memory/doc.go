// Package memory is the SDK's memory kit: a bounded ring for conversation memory
// (Ring), an append-only journal of JSON lines with rotation and a chosen fsync policy
// (Journal), atomic checkpoints of an agent's state and conversation (SaveCheckpoint,
// LoadCheckpoint), and an exact in-process vector store (LocalVectorStore behind the
// VectorStore interface).
//
// It works on the local process and disk only: it must not talk to the mesh, start
// goroutines that outlive the value that owns them (the journal's sync loop ends with
// Close), or import any service or model code. Its containers are generic over the
// element type, so a conversation of llm.Message needs no dependency on package llm.
package memory
