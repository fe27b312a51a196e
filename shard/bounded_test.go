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
