package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/agent"
)

func TestLocalVectorStoreSearch(t *testing.T) {
	ctx := context.Background()
	s := NewLocalVectorStore(3)
	docs := []VectorDoc{
		{ID: "x", Vector: []float32{1, 0, 0}, Tags: []string{"axis", "red"}, Payload: json.RawMessage(`{"n":1}`)},
		{ID: "y", Vector: []float32{0, 2, 0}, Tags: []string{"axis"}},
		{ID: "z", Vector: []float32{0, 0, 3}, Tags: []string{"axis", "blue"}},
		{ID: "xy", Vector: []float32{1, 1, 0}, Tags: []string{"red"}},
		{ID: "neg", Vector: []float32{-1, 0, 0}},
	}
	if err := s.Upsert(ctx, docs...); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    VectorQuery
		want []string
	}{
		{"top1", VectorQuery{Vector: []float32{1, 0, 0}, K: 1}, []string{"x"}},
		{"magnitude ignored", VectorQuery{Vector: []float32{10, 0, 0}, K: 2}, []string{"x", "xy"}},
		{"all, best first", VectorQuery{Vector: []float32{1, 0.1, 0}, K: 10}, []string{"x", "xy", "y", "z", "neg"}},
		{"tag filter", VectorQuery{Vector: []float32{1, 0, 0}, K: 5, Tags: []string{"axis"}}, []string{"x", "y", "z"}},
		{"tags are ANDed", VectorQuery{Vector: []float32{0, 1, 0}, K: 5, Tags: []string{"red", "axis"}}, []string{"x"}},
		{"unknown tag", VectorQuery{Vector: []float32{1, 0, 0}, K: 5, Tags: []string{"green"}}, []string{}},
		{"tie broken by id", VectorQuery{Vector: []float32{0, 0, 1}, K: 3, Tags: []string{"axis"}}, []string{"z", "x", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Search(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Fatalf("ids = %v, want %v", ids, tt.want)
			}
		})
	}
	got, _ := s.Search(ctx, VectorQuery{Vector: []float32{1, 0, 0}, K: 1})
	if math.Abs(float64(got[0].Score)-1) > 1e-6 || string(got[0].Payload) != `{"n":1}` || !slices.Equal(got[0].Tags, []string{"axis", "red"}) {
		t.Fatalf("match = %+v", got[0])
	}
}

func TestLocalVectorStoreUpsertDelete(t *testing.T) {
	ctx := context.Background()
	s := NewLocalVectorStore(2)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Upsert(ctx, VectorDoc{ID: "a", Vector: []float32{1, 0}}, VectorDoc{ID: "b", Vector: []float32{0, 1}}, VectorDoc{ID: "c", Vector: []float32{1, 1}}))
	must(s.Upsert(ctx, VectorDoc{ID: "a", Vector: []float32{0, 1}, Tags: []string{"moved"}}))
	if s.Len() != 3 {
		t.Fatalf("Len = %d after replace", s.Len())
	}
	res, _ := s.Search(ctx, VectorQuery{Vector: []float32{0, 1}, K: 1, Tags: []string{"moved"}})
	if len(res) != 1 || res[0].ID != "a" || res[0].Score < 0.999 {
		t.Fatalf("replaced doc not found: %+v", res)
	}
	must(s.Delete(ctx, "a", "missing"))
	must(s.Delete(ctx, "a"))
	res, _ = s.Search(ctx, VectorQuery{Vector: []float32{1, 1}, K: 10})
	if len(res) != 2 || res[0].ID != "c" || res[1].ID != "b" {
		t.Fatalf("after delete: %+v", res)
	}
	must(s.Delete(ctx, "c", "b"))
	if s.Len() != 0 || s.Dim() != 2 {
		t.Fatal("not empty")
	}

	bad := []struct {
		name string
		err  error
	}{
		{"empty id", s.Upsert(ctx, VectorDoc{Vector: []float32{1, 0}})},
		{"wrong dim", s.Upsert(ctx, VectorDoc{ID: "a", Vector: []float32{1}})},
		{"zero", s.Upsert(ctx, VectorDoc{ID: "a", Vector: []float32{0, 0}})},
		{"nan", s.Upsert(ctx, VectorDoc{ID: "a", Vector: []float32{float32(math.NaN()), 1}})},
		{"k=0", func() error { _, err := s.Search(ctx, VectorQuery{Vector: []float32{1, 0}}); return err }()},
		{"query dim", func() error { _, err := s.Search(ctx, VectorQuery{Vector: []float32{1}, K: 1}); return err }()},
	}
	for _, b := range bad {
		if agent.CodeOf(b.err) != agent.CodeInvalidArgument {
			t.Errorf("%s: err = %v, want invalid_argument", b.name, b.err)
		}
	}
	// A batch with one bad doc stores nothing.
	if err := s.Upsert(ctx, VectorDoc{ID: "ok", Vector: []float32{1, 0}}, VectorDoc{ID: "bad", Vector: []float32{0, 0}}); err == nil || s.Len() != 0 {
		t.Fatalf("partial batch stored: err %v, len %d", err, s.Len())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Search(cctx, VectorQuery{Vector: []float32{1, 0}, K: 1}); err == nil {
		t.Fatal("cancelled search ran")
	}
}

// TestLocalVectorStoreMatchesBruteForce compares the heap top-k with a full sort.
func TestLocalVectorStoreMatchesBruteForce(t *testing.T) {
	ctx := context.Background()
	const n, dim = 2000, 16
	s, vecs := randomStore(t, n, dim, 1)
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 20 {
		q := randomVector(r, dim)
		k := 1 + trial*3
		tag := fmt.Sprintf("t%d", trial%4)
		got, err := s.Search(ctx, VectorQuery{Vector: q, K: k, Tags: []string{tag}})
		if err != nil {
			t.Fatal(err)
		}
		want := bruteForce(vecs, q, k, trial%4)
		if len(got) != len(want) {
			t.Fatalf("trial %d: %d results, want %d", trial, len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i] {
				t.Fatalf("trial %d: rank %d = %s, want %s", trial, i, got[i].ID, want[i])
			}
		}
	}
}

func randomVector(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// randomStore fills a store with n random vectors; doc i has tag "t<i%4>".
func randomStore(t testing.TB, n, dim int, seed uint64) (*LocalVectorStore, [][]float32) {
	r := rand.New(rand.NewPCG(seed, seed))
	s := NewLocalVectorStore(dim)
	vecs := make([][]float32, n)
	docs := make([]VectorDoc, n)
	for i := range n {
		vecs[i] = randomVector(r, dim)
		docs[i] = VectorDoc{ID: fmt.Sprintf("d%06d", i), Vector: vecs[i], Tags: []string{fmt.Sprintf("t%d", i%4)}}
	}
	if err := s.Upsert(context.Background(), docs...); err != nil {
		t.Fatal(err)
	}
	return s, vecs
}

// bruteForce scores every vector in float64 and sorts them all: the baseline.
func bruteForce(vecs [][]float32, q []float32, k, tagMod int) []string {
	type sc struct {
		id    string
		score float64
	}
	norm := func(v []float32) float64 {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		return math.Sqrt(s)
	}
	qn := norm(q)
	var all []sc
	for i, v := range vecs {
		if tagMod >= 0 && i%4 != tagMod {
			continue
		}
		var d float64
		for j := range v {
			d += float64(v[j]) * float64(q[j])
		}
		all = append(all, sc{fmt.Sprintf("d%06d", i), d / (norm(v) * qn)})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].score != all[j].score {
			return all[i].score > all[j].score
		}
		return all[i].id < all[j].id
	})
	out := []string{}
	for i := 0; i < k && i < len(all); i++ {
		out = append(out, all[i].id)
	}
	return out
}

// BenchmarkVectorSearch measures top-10 search over 100k 128-dimensional vectors, with and
// without a tag filter. The baseline sub-benchmark scores every vector and sorts them all
// (the naive approach) in the same process; the heap search reports its speed-up over it
// as x_baseline.
func BenchmarkVectorSearch(b *testing.B) {
	const n, dim, k = 100_000, 128, 10
	s, _ := randomStore(b, n, dim, 42)
	r := rand.New(rand.NewPCG(1, 2))
	q := randomVector(r, dim)
	ctx := context.Background()

	baseline := func() {
		qn, _ := s.normalize(q)
		type sc struct {
			row   int
			score float32
		}
		all := make([]sc, len(s.ids))
		for row := range s.ids {
			all[row] = sc{row, dot(qn, s.slab[row*dim:(row+1)*dim])}
		}
		sort.Slice(all, func(i, j int) bool { return all[i].score > all[j].score })
		_ = all[:k]
	}
	var baseNs float64
	b.Run("baseline_sort_all", func(b *testing.B) {
		for b.Loop() {
			baseline()
		}
		baseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	for _, tc := range []struct {
		name string
		tags []string
	}{{"top10", nil}, {"top10_tag_filter", []string{"t1"}}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				res, err := s.Search(ctx, VectorQuery{Vector: q, K: k, Tags: tc.tags})
				if err != nil || len(res) != k {
					b.Fatalf("%d results, %v", len(res), err)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(n)/(ns/1e9), "vectors/s")
			if baseNs > 0 && tc.tags == nil {
				b.ReportMetric(baseNs/ns, "x_baseline")
			}
		})
	}
}

// Tags beyond the first 64 take the slow filter path; results must not change.
func TestLocalVectorStoreManyTags(t *testing.T) {
	ctx := context.Background()
	s := NewLocalVectorStore(2)
	for i := range 100 {
		tags := []string{fmt.Sprintf("tag%d", i), "all"}
		if i%2 == 0 {
			tags = append(tags, "even")
		}
		if err := s.Upsert(ctx, VectorDoc{ID: fmt.Sprintf("d%03d", i), Vector: []float32{1, float32(i) / 100}, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		tags []string
		want []string
	}{
		{[]string{"tag90"}, []string{"d090"}},
		{[]string{"tag90", "even"}, []string{"d090"}},
		{[]string{"tag91", "even"}, nil},
		{[]string{"tag3", "all"}, []string{"d003"}},
	} {
		got, err := s.Search(ctx, VectorQuery{Vector: []float32{1, 0}, K: 5, Tags: tc.tags})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range got {
			ids = append(ids, m.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Fatalf("tags %v: %v, want %v", tc.tags, ids, tc.want)
		}
	}
	if err := s.Delete(ctx, "d000"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Search(ctx, VectorQuery{Vector: []float32{1, 0.99}, K: 1, Tags: []string{"tag99"}})
	if len(got) != 1 || got[0].ID != "d099" {
		t.Fatalf("after delete: %+v", got)
	}
}
