package shard

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBounded_Options(t *testing.T) {
	for _, c := range []float64{0.5, 0.999, math.NaN(), math.Inf(1), -1} {
		_, err := NewBounded(makeNodes(3), BoundedOptions{LoadFactor: c})
		assert.ErrorIs(t, err, ErrInvalidConfig, "c=%v", c)
	}
	for _, p := range []int{-1, maxPartitions + 1} {
		_, err := NewBounded(makeNodes(3), BoundedOptions{Partitions: p})
		assert.ErrorIs(t, err, ErrInvalidConfig, "partitions=%d", p)
	}
}

// No shard exceeds its capacity, for any c ≥ 1 — including c = 1 exactly
// and fewer partitions than shards, where other libraries panic with "not
// enough room".
func TestBounded_NeverExceedsCapacity(t *testing.T) {
	for _, tc := range []struct {
		n, p int
		c    float64
	}{{10, 0, 1}, {10, 3, 1}, {7, 1000, 1.05}, {100, 0, 1.25}, {3, 1, 1}} {
		nodes := makeNodes(tc.n)
		nodes[0].Weight = 5
		b, err := NewBounded(nodes, BoundedOptions{LoadFactor: tc.c, Partitions: tc.p})
		require.NoError(t, err, "%+v", tc)
		owned, capacity := b.Partitions()
		total := 0
		for i := range owned {
			assert.LessOrEqual(t, owned[i], capacity[i], "%+v shard %d", tc, i)
			total += owned[i]
		}
		assert.Equal(t, len(b.table), total)
	}
}

func TestBounded_KeyBalanceAtC105(t *testing.T) {
	b, err := NewBounded(makeNodes(100), BoundedOptions{LoadFactor: 1.05})
	require.NoError(t, err)
	ks := keys(500_000)
	assert.LessOrEqual(t, maxOverMean(loads(b, ks), len(ks)), 1.10)
}

// The table is the paper's: partition p, in order, goes to the first shard
// clockwise from its point mix64(p·golden) with room under its capacity
// ⌈c·P·w/W⌉ — never to one counter-clockwise.
func TestBounded_FollowsThePapersRule(t *testing.T) {
	nodes := makeNodes(5)
	nodes[1].Weight = 3
	const p, vn = 97, 8
	for _, c := range []float64{1, 1.1, 1.5} {
		b, err := NewBounded(nodes, BoundedOptions{LoadFactor: c, Partitions: p, VirtualNodes: vn})
		require.NoError(t, err)
		ring, err := NewRing(nodes, RingOptions{VirtualNodes: vn})
		require.NoError(t, err)
		load := make([]int, len(nodes))
		for part := range p {
			k := ring.search(mix64(uint64(part) * golden))
			want := -1
			for step := range len(ring.owners) {
				o := int(ring.owners[(k+step)%len(ring.owners)])
				if float64(load[o]) < math.Ceil(c*p*nodes[o].Weight/7) {
					want = o
					break
				}
			}
			require.GreaterOrEqual(t, want, 0)
			require.Equal(t, int32(want), b.table[part], "c=%v, partition %d", c, part)
			load[want]++
		}
	}
}
