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
