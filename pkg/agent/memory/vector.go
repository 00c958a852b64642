package memory

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/mxp-mesh/mesh/pkg/agent"
)

// VectorDoc is one entry of a vector store: an embedding with an id, tags to filter on and
// an optional payload returned with matches.
type VectorDoc struct {
	ID      string          `json:"id"`
	Vector  []float32       `json:"vector"`
	Tags    []string        `json:"tags,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// VectorQuery asks for the K entries most similar to Vector that carry every tag in Tags.
type VectorQuery struct {
	Vector []float32
	K      int
	Tags   []string // all must be present; empty means no filter
}

// VectorMatch is one search result; Score is the cosine similarity in [-1, 1].
type VectorMatch struct {
	ID      string          `json:"id"`
	Score   float32         `json:"score"`
	Tags    []string        `json:"tags,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// VectorStore is where an agent keeps embeddings for recall. LocalVectorStore is the
// in-process implementation; a remote one (a database) satisfies the same interface.
type VectorStore interface {
	// Upsert adds docs, replacing any with the same ID.
	Upsert(ctx context.Context, docs ...VectorDoc) error
	// Delete removes the docs with these IDs; unknown IDs are ignored.
	Delete(ctx context.Context, ids ...string) error
	// Search returns up to q.K matches, best first.
	Search(ctx context.Context, q VectorQuery) ([]VectorMatch, error)
	// Len returns the number of docs stored.
	Len() int
}

// LocalVectorStore is an in-memory VectorStore using exact cosine similarity over
// normalised vectors kept in one contiguous slab. A search scans every vector (no index),
// which is exact and fast up to a few hundred thousand entries; see BenchmarkVectorSearch.
// It is safe for concurrent use.
type LocalVectorStore struct {
	dim int

	mu      sync.RWMutex
	slab    []float32 // len = dim * len(ids); row i is doc i, unit length
	ids     []string
	tags    [][]uint32 // sorted tag ids per doc
	masks   []uint64   // per doc, bit i set when it has tag id i (ids < 64): the fast filter
	names   [][]string // tags as given, per doc
	payload []json.RawMessage
	pos     map[string]int    // id → row
	tagIDs  map[string]uint32 // interned tag names
}

var _ VectorStore = (*LocalVectorStore)(nil)

// NewLocalVectorStore returns an empty store for vectors of dim dimensions.
func NewLocalVectorStore(dim int) *LocalVectorStore {
	if dim < 1 {
		dim = 1
	}
	return &LocalVectorStore{dim: dim, pos: map[string]int{}, tagIDs: map[string]uint32{}}
}

// Dim returns the store's vector dimension.
func (s *LocalVectorStore) Dim() int { return s.dim }

// Len returns the number of docs stored.
func (s *LocalVectorStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ids)
}

// normalize returns v scaled to unit length, or an error for a wrong dimension, a zero
// vector or a non-finite value.
func (s *LocalVectorStore) normalize(v []float32) ([]float32, error) {
	if len(v) != s.dim {
		return nil, agent.Errorf(agent.CodeInvalidArgument, "vector has %d dimensions, store has %d", len(v), s.dim)
	}
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return nil, agent.Errorf(agent.CodeInvalidArgument, "vector must be finite and non-zero")
	}
	inv := float32(1 / math.Sqrt(sum))
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x * inv
	}
	return out, nil
}

// Upsert adds docs, replacing any with the same ID. Either every doc is stored or, on a
// bad one (empty ID, wrong dimension, zero or non-finite vector), none is.
func (s *LocalVectorStore) Upsert(ctx context.Context, docs ...VectorDoc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	normed := make([][]float32, len(docs))
	for i, d := range docs {
		if d.ID == "" {
			return agent.Errorf(agent.CodeInvalidArgument, "vector doc %d: empty id", i)
		}
		v, err := s.normalize(d.Vector)
		if err != nil {
			return fmt.Errorf("vector doc %q: %w", d.ID, err)
		}
		normed[i] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, d := range docs {
		tags := s.internLocked(d.Tags)
		names := slices.Clone(d.Tags)
		if row, ok := s.pos[d.ID]; ok {
			copy(s.slab[row*s.dim:], normed[i])
			s.tags[row], s.masks[row], s.names[row], s.payload[row] = tags, tagMask(tags), names, d.Payload
			continue
		}
		s.pos[d.ID] = len(s.ids)
		s.slab = append(s.slab, normed[i]...)
		s.ids = append(s.ids, d.ID)
		s.tags = append(s.tags, tags)
		s.masks = append(s.masks, tagMask(tags))
		s.names = append(s.names, names)
		s.payload = append(s.payload, d.Payload)
	}
	return nil
}

func (s *LocalVectorStore) internLocked(tags []string) []uint32 {
	out := make([]uint32, 0, len(tags))
	for _, t := range tags {
		id, ok := s.tagIDs[t]
		if !ok {
			id = uint32(len(s.tagIDs))
			s.tagIDs[t] = id
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Delete removes the docs with these IDs; unknown IDs are ignored.
func (s *LocalVectorStore) Delete(ctx context.Context, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		row, ok := s.pos[id]
		if !ok {
			continue
		}
		last := len(s.ids) - 1
		if row != last { // move the last row into the hole
			copy(s.slab[row*s.dim:(row+1)*s.dim], s.slab[last*s.dim:])
			s.ids[row], s.tags[row], s.names[row], s.payload[row] = s.ids[last], s.tags[last], s.names[last], s.payload[last]
			s.masks[row] = s.masks[last]
			s.pos[s.ids[row]] = row
		}
		s.slab = s.slab[:last*s.dim]
		s.ids, s.tags, s.names, s.payload = s.ids[:last], s.tags[:last], s.names[:last], s.payload[:last]
		s.masks = s.masks[:last]
		delete(s.pos, id)
	}
	return nil
}

// Search returns up to q.K docs most similar to q.Vector (cosine) that carry every tag in
// q.Tags, best first; ties are broken by ID so results are deterministic.
func (s *LocalVectorStore) Search(ctx context.Context, q VectorQuery) ([]VectorMatch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K < 1 {
		return nil, agent.Errorf(agent.CodeInvalidArgument, "k must be at least 1, got %d", q.K)
	}
	qv, err := s.normalize(q.Vector)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	want, ok := s.lookupTagsLocked(q.Tags)
	if !ok {
		return []VectorMatch{}, nil // a tag nobody has: nothing can match
	}
	wantMask, maskOnly := tagMask(want), len(want) == 0 || want[len(want)-1] < 64
	h := make(scoreHeap, 0, min(q.K, len(s.ids)))
	for row := range s.ids {
		if s.masks[row]&wantMask != wantMask {
			continue // misses a tag among the first 64: no need to look further
		}
		if !maskOnly && !containsAll(s.tags[row], want) {
			continue
		}
		sc := dot(qv, s.slab[row*s.dim:(row+1)*s.dim])
		if len(h) < q.K {
			heap.Push(&h, scored{row: row, score: sc, id: s.ids[row]})
			continue
		}
		if better(scored{row: row, score: sc, id: s.ids[row]}, h[0]) {
			h[0] = scored{row: row, score: sc, id: s.ids[row]}
			heap.Fix(&h, 0)
		}
	}
	sort.Slice(h, func(i, j int) bool { return better(h[i], h[j]) })
	out := make([]VectorMatch, len(h))
	for i, m := range h {
		out[i] = VectorMatch{ID: m.id, Score: m.score, Tags: slices.Clone(s.names[m.row]), Payload: s.payload[m.row]}
	}
	return out, nil
}

func (s *LocalVectorStore) lookupTagsLocked(tags []string) ([]uint32, bool) {
	out := make([]uint32, 0, len(tags))
	for _, t := range tags {
		id, ok := s.tagIDs[t]
		if !ok {
			return nil, false
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out), true
}

// tagMask sets bit i for each tag id i below 64 in ids.
func tagMask(ids []uint32) uint64 {
	var m uint64
	for _, id := range ids {
		if id < 64 {
			m |= 1 << id
		}
	}
	return m
}

// containsAll reports whether sorted have holds every id in sorted want.
func containsAll(have, want []uint32) bool {
	i := 0
	for _, w := range want {
		for i < len(have) && have[i] < w {
			i++
		}
		if i == len(have) || have[i] != w {
			return false
		}
	}
	return true
}

// dot is the inner product of two equal-length vectors, unrolled by four.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

type scored struct {
	row   int
	score float32
	id    string
}

// better orders matches: higher score first, then smaller ID.
func better(a, b scored) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.id < b.id
}

// scoreHeap is a min-heap by better: its root is the worst of the kept top k.
type scoreHeap []scored

func (h scoreHeap) Len() int           { return len(h) }
func (h scoreHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h scoreHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *scoreHeap) Push(x any)        { *h = append(*h, x.(scored)) }
func (h *scoreHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
