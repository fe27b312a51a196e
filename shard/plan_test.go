package shard

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlanMoves(t *testing.T) {
	nodes := makeNodes(4)
	old, err := NewRing(nodes[:3], RingOptions{})
	require.NoError(t, err)
	grown, err := NewRing(nodes, RingOptions{})
	require.NoError(t, err)
	ks := keys(10_000)
	p, err := PlanMoves(old, grown, slices.Values(ks), PlanOptions{})
	require.NoError(t, err)
	assert.Equal(t, len(ks), p.Keys)
	assert.Len(t, p.Moves, p.Moved)
	assert.InDelta(t, 0.25, p.Fraction(), 0.03, "about 1/(n+1) moves")
	sum := 0
	for _, f := range p.Flows {
		assert.Equal(t, "shard-003", f.To, "growing a ring moves keys only to the new shard")
		sum += f.Keys
	}
	assert.Equal(t, p.Moved, sum)
	for _, m := range p.Moves[:20] {
		assert.Equal(t, m.From, nodes[old.Locate(m.Key)].Name)
		assert.Equal(t, m.To, nodes[grown.Locate(m.Key)].Name)
	}

	// Re-weighting: doubling one shard's weight only moves keys to it.
	heavy := slices.Clone(nodes)
	heavy[0].Weight = 2
	rw, err := NewRendezvous(heavy)
	require.NoError(t, err)
	base, err := NewRendezvous(nodes)
	require.NoError(t, err)
	p, err = PlanMoves(base, rw, slices.Values(ks), PlanOptions{CountOnly: true})
	require.NoError(t, err)
	assert.Empty(t, p.Moves)
	assert.InDelta(t, 2.0/5-1.0/4, p.Fraction(), 0.02)
	for _, f := range p.Flows {
		assert.Equal(t, "shard-000", f.To)
	}

	rng, err := NewRange(abc, []Span{{Start: "m", Shard: "a"}})
	require.NoError(t, err)
	_, err = PlanMoves(rng, rw, slices.Values([]string{"z", "b"}), PlanOptions{})
	assert.ErrorIs(t, err, ErrNoShardForKey)
	var empty Plan
	assert.Zero(t, empty.Fraction())
}

func TestPlanRanges(t *testing.T) {
	r, err := NewRange(abc, []Span{{"", "m", "a"}, {"m", "", "b"}})
	require.NoError(t, err)
	split, err := r.Split("t", "c")
	require.NoError(t, err)
	moves := PlanRanges(r, split)
	assert.Equal(t, []RangeMove{{Span: Span{"t", "", "c"}, From: "b", To: "c"}}, moves)
	assert.Equal(t, `["t", ∞) b → c`, moves[0].String())

	merged, err := split.Merge("m")
	require.NoError(t, err)
	assert.Equal(t, []RangeMove{{Span: Span{"m", "t", "a"}, From: "b", To: "a"}}, PlanRanges(split, merged))
	assert.Empty(t, PlanRanges(r, r))

	shrunk, err := NewRange(abc, []Span{{"", "m", "a"}})
	require.NoError(t, err)
	lost := PlanRanges(r, shrunk)
	require.Len(t, lost, 1)
	assert.Equal(t, "", lost[0].To, "keys with no range in the new layout are reported")
	assert.Contains(t, lost[0].String(), "(none)")
}

// Flows are sorted by source, then destination, and each counts exactly
// the keys that move between its two shards.
func TestPlanMoves_FlowsSortedAndExact(t *testing.T) {
	from, err := NewRing(abc, RingOptions{})
	require.NoError(t, err)
	to, err := NewRing([]Node{{Name: "y", Weight: 1}, {Name: "x", Weight: 1}}, RingOptions{})
	require.NoError(t, err)
	ks := keys(3_000)
	want := map[[2]string]int{}
	for _, k := range ks {
		want[[2]string{from.Nodes()[from.Locate(k)].Name, to.Nodes()[to.Locate(k)].Name}]++
	}
	p, err := PlanMoves(from, to, slices.Values(ks), PlanOptions{CountOnly: true})
	require.NoError(t, err)
	require.Len(t, p.Flows, 6, "each of a, b, c sends keys to each of x, y")
	assert.Equal(t, len(ks), p.Moved)
	for i, f := range p.Flows {
		assert.Equal(t, want[[2]string{f.From, f.To}], f.Keys, "%s → %s", f.From, f.To)
		assert.Equal(t, []string{"a", "a", "b", "b", "c", "c"}[i], f.From)
		assert.Equal(t, []string{"x", "y"}[i%2], f.To)
	}
}

// Adjacent pieces that move between the same two shards are reported as
// one range; a boundary of the new layout alone cuts a move in two.
func TestPlanRanges_JoinsAdjacentMoves(t *testing.T) {
	from, err := NewRange(abc, []Span{{"", "g", "a"}, {"g", "m", "a"}, {"m", "", "b"}})
	require.NoError(t, err)
	to, err := NewRange(abc, []Span{{"", "m", "c"}, {"m", "", "b"}})
	require.NoError(t, err)
	assert.Equal(t, []RangeMove{{Span: Span{"", "m", "c"}, From: "a", To: "c"}}, PlanRanges(from, to))

	to, err = NewRange(abc, []Span{{"", "d", "c"}, {"d", "", "b"}})
	require.NoError(t, err)
	assert.Equal(t, []RangeMove{
		{Span: Span{"", "d", "c"}, From: "a", To: "c"},
		{Span: Span{"d", "m", "b"}, From: "a", To: "b"},
	}, PlanRanges(from, to))
	// The last piece runs to the end of the key space.
	to, err = NewRange(abc, []Span{{"", "m", "a"}, {"m", "", "c"}})
	require.NoError(t, err)
	assert.Equal(t, []RangeMove{{Span: Span{"m", "", "c"}, From: "b", To: "c"}}, PlanRanges(from, to))
}

// A layout with gaps: a range's end that starts no other range still cuts
// the key space, so a move stops there.
func TestPlanRanges_GapsEndMoves(t *testing.T) {
	from, err := NewRange(abc, []Span{{"b", "d", "a"}, {"x", "", "c"}})
	require.NoError(t, err)
	to, err := NewRange(abc, []Span{{"", "", "b"}})
	require.NoError(t, err)
	assert.Equal(t, []RangeMove{
		{Span: Span{"b", "d", "b"}, From: "a", To: "b"},
		{Span: Span{"x", "", "b"}, From: "c", To: "b"},
	}, PlanRanges(from, to))
}
