package shard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var abc = []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}, {Name: "c", Weight: 1}}

func TestRange_BadInput(t *testing.T) {
	cases := []struct {
		name  string
		spans []Span
		want  error
	}{
		{"no ranges", nil, ErrInvalidRange},
		{"unsorted", []Span{{Start: "m", End: "z", Shard: "a"}, {Start: "a", End: "f", Shard: "b"}}, ErrInvalidRange},
		{"overlapping", []Span{{Start: "a", End: "m", Shard: "a"}, {Start: "k", End: "z", Shard: "b"}}, ErrInvalidRange},
		{"open end before another", []Span{{Start: "a", Shard: "a"}, {Start: "k", End: "z", Shard: "b"}}, ErrInvalidRange},
		{"empty range", []Span{{Start: "k", End: "k", Shard: "a"}}, ErrInvalidRange},
		{"reversed range", []Span{{Start: "k", End: "b", Shard: "a"}}, ErrInvalidRange},
		{"unknown shard", []Span{{Start: "a", Shard: "zz"}}, ErrUnknownShard},
	}
	for _, c := range cases {
		_, err := NewRange(abc, c.spans)
		assert.ErrorIs(t, err, c.want, c.name)
		assert.ErrorIs(t, err, ErrInvalidConfig, c.name)
	}
	_, err := NewRange(abc, cases[1].spans)
	assert.ErrorContains(t, err, `range 1 starts at "a", not after range 0's start "m"`)
	_, err = NewRange(abc, []Span{{Start: "a", End: "c", Shard: "a"}, {Start: "a", End: "z", Shard: "b"}})
	assert.ErrorContains(t, err, `range 1 starts at "a", not after range 0's start "a"`, "two ranges with one start")
	_, err = NewRange(abc, cases[2].spans)
	assert.ErrorContains(t, err, `range 1 ["k", "z") overlaps range 0 ["a", "m")`)
	for _, c := range []struct {
		splits []string
		names  string // what the error must say
	}{
		{[]string{"m"}, "1 split points for 3 shards (want 2)"},
		{[]string{"f", "m", "t"}, "3 split points for 3 shards (want 2)"},
		{[]string{"m", "f"}, ""},
		{[]string{"f", "f"}, ""},
		{[]string{"", "m"}, "split point 0 is empty"},
		{[]string{"m", ""}, "split point 1 is empty"},
	} {
		_, err := NewRangeSplits(abc, c.splits)
		assert.ErrorIs(t, err, ErrInvalidRange, "%q", c.splits)
		assert.ErrorContains(t, err, c.names, "%q", c.splits)
	}
}

// Ranges decide a shard's share, so a weight other than 1 is rejected
// rather than ignored.
func TestRange_RejectsWeights(t *testing.T) {
	heavy := []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 2.5}}
	_, err := NewRange(heavy, []Span{{Start: "", End: "m", Shard: "a"}, {Start: "m", Shard: "b"}})
	assert.ErrorIs(t, err, ErrInvalidWeight)
	assert.ErrorContains(t, err, `shard "b" has weight 2.5`)
	_, err = NewRangeSplits(heavy, []string{"m"})
	assert.ErrorIs(t, err, ErrInvalidWeight)
	assert.ErrorContains(t, err, `"b"`)
}

func TestRange_Locate(t *testing.T) {
	r, err := NewRangeSplits(abc, []string{"g", "p"})
	require.NoError(t, err)
	for key, want := range map[string]int{"": 0, "apple": 0, "g": 1, "hello": 1, "p": 2, "zzz": 2, "f\xff": 0} {
		assert.Equal(t, want, r.Locate(key), "%q", key)
	}

	gaps, err := NewRange(abc, []Span{{Start: "b", End: "d", Shard: "a"}, {Start: "x", End: "y", Shard: "c"}})
	require.NoError(t, err)
	assert.Equal(t, 0, gaps.Locate("c"))
	assert.Equal(t, 2, gaps.Locate("x1"))
	for _, k := range []string{"a", "d", "m", "y", "z"} {
		assert.Equal(t, -1, gaps.Locate(k), "%q", k)
		_, err := gaps.Lookup(k)
		assert.ErrorIs(t, err, ErrNoShardForKey, "%q", k)
	}
}

func TestRange_SplitAndMerge(t *testing.T) {
	r, err := NewRange(abc, []Span{{"", "m", "a"}, {"m", "", "b"}})
	require.NoError(t, err)
	s, err := r.Split("t", "c")
	require.NoError(t, err)
	assert.Equal(t, []Span{{"", "m", "a"}, {"m", "t", "b"}, {"t", "", "c"}}, s.Spans())
	assert.Equal(t, 2, s.Locate("x"))
	assert.Equal(t, 1, r.Locate("x"), "the original is unchanged")

	_, err = s.Split("t", "a")
	assert.ErrorIs(t, err, ErrInvalidRange, "split at an existing start")
	_, err = s.Split("q", "nobody")
	assert.ErrorIs(t, err, ErrUnknownShard)

	m, err := s.Merge("t")
	require.NoError(t, err)
	assert.Equal(t, []Span{{"", "m", "a"}, {"m", "", "b"}}, m.Spans())
	_, err = m.Merge("")
	assert.ErrorIs(t, err, ErrInvalidRange, "the first range has nothing to merge into")
	_, err = m.Merge("q")
	assert.ErrorIs(t, err, ErrInvalidRange)

	gaps, err := NewRange(abc, []Span{{Start: "b", End: "d", Shard: "a"}, {Start: "x", Shard: "c"}})
	require.NoError(t, err)
	_, err = gaps.Merge("x")
	assert.ErrorIs(t, err, ErrInvalidRange, "ranges with a gap between them do not merge")
	_, err = gaps.Split("m", "b")
	assert.ErrorIs(t, err, ErrNoShardForKey)
	first, err := gaps.Split("c", "b")
	require.NoError(t, err, "the first range splits too")
	assert.Equal(t, []Span{{"b", "c", "a"}, {"c", "d", "b"}, {"x", "", "c"}}, first.Spans())
}

// Time-ordered keys send every write to the last range: Hot finds it.
func TestRange_HotRangeDetection(t *testing.T) {
	r, err := NewRangeSplits(abc, []string{"2026-01", "2026-06"})
	require.NoError(t, err)
	_, err = r.Hot(0.5)
	assert.ErrorIs(t, err, ErrInvalidConfig)

	hot, err := r.Hot(1.5)
	require.NoError(t, err)
	assert.Empty(t, hot, "nothing observed yet")
	r.Observe("2025-12-31")
	for i := range 100 {
		r.Observe("2026-11-" + string(rune('a'+i%26)))
	}
	hot, err = r.Hot(1.5)
	require.NoError(t, err)
	require.Len(t, hot, 1)
	assert.Equal(t, "c", hot[0].Shard)
	assert.Equal(t, uint64(100), hot[0].Count)
	assert.InDelta(t, 100.0/101, hot[0].Share, 1e-9)

	r.ResetLoad()
	for _, l := range r.Load() {
		assert.Zero(t, l.Count, l.Shard)
		assert.Zero(t, l.Share, "%s: no accesses, a share of 0, not NaN", l.Shard)
	}

	gaps, err := NewRange(abc, []Span{{Start: "b", End: "d", Shard: "a"}})
	require.NoError(t, err)
	assert.Equal(t, -1, gaps.Observe("z"), "a key outside every range")
	assert.Equal(t, 0, gaps.Observe("c"))
	assert.Equal(t, []RangeLoad{{Span: Span{"b", "d", "a"}, Count: 1, Share: 1}}, gaps.Load())
	i, err := gaps.Lookup("z")
	assert.ErrorIs(t, err, ErrNoShardForKey)
	assert.ErrorContains(t, err, `"z"`)
	assert.Equal(t, -1, i)
}

// Hot lists the ranges whose share exceeds factor × the mean — strictly —
// busiest first; a factor of exactly 1 is allowed.
func TestRange_HotIsStrictAndSorted(t *testing.T) {
	nodes := makeNodes(5)
	r, err := NewRangeSplits(nodes, []string{"b", "c", "d", "e"})
	require.NoError(t, err)
	observe := func(counts ...int) {
		r.ResetLoad()
		for i, n := range counts {
			for range n {
				r.Observe(string(rune('a' + i)))
			}
		}
	}
	observe(10, 30, 50, 10, 0)
	hot, err := r.Hot(1)
	require.NoError(t, err)
	require.Len(t, hot, 2)
	assert.Equal(t, []string{"shard-002", "shard-001"}, []string{hot[0].Shard, hot[1].Shard}, "busiest first")
	assert.Equal(t, []uint64{50, 30}, []uint64{hot[0].Count, hot[1].Count})

	observe(20, 20, 20, 20, 20)
	hot, err = r.Hot(1)
	require.NoError(t, err)
	assert.Empty(t, hot, "a share equal to the mean is not above it")
	observe(40, 15, 15, 15, 15)
	hot, err = r.Hot(2)
	require.NoError(t, err)
	assert.Empty(t, hot, "a share of exactly twice the mean does not exceed it")
	observe(41, 15, 15, 15, 14)
	hot, err = r.Hot(2)
	require.NoError(t, err)
	require.Len(t, hot, 1)
	assert.Equal(t, "shard-000", hot[0].Shard)
}
