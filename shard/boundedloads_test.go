package shard

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBoundedLoads_BadInput(t *testing.T) {
	for _, c := range []float64{0.9, -1, math.NaN(), math.Inf(1)} {
		_, err := NewBoundedLoads(makeNodes(3), BoundedLoadsOptions{LoadFactor: c})
		assert.ErrorIs(t, err, ErrInvalidConfig, "c=%v", c)
	}
	_, err := NewBoundedLoads(nil, BoundedLoadsOptions{})
	assert.ErrorIs(t, err, ErrNoShards)
	b, err := NewBoundedLoads(makeNodes(3), BoundedLoadsOptions{})
	require.NoError(t, err)
	assert.ErrorIs(t, b.Release(0), ErrNotAcquired)
	assert.ErrorIs(t, b.Release(7), ErrNotAcquired)
	for _, i := range []int{-1, 3} { // just outside the shard set
		require.NotPanics(t, func() { err = b.Release(i) })
		assert.ErrorIs(t, err, ErrNotAcquired, "shard %d", i)
		assert.ErrorContains(t, err, fmt.Sprintf("shard %d", i))
	}
}

// One hot key: without the bound every request would go to one shard;
// with it no shard exceeds ⌈c·m/n⌉, at every c, including c = 1.
func TestBoundedLoads_HotKeyNeverOverloadsAShard(t *testing.T) {
	for _, c := range []float64{1, 1.05, 1.25, 2} {
		hooked := 0
		b, err := NewBoundedLoads(makeNodes(8), BoundedLoadsOptions{LoadFactor: c, OnOverflow: func(key string, owner, chosen int) {
			assert.Equal(t, "hot", key)
			assert.NotEqual(t, owner, chosen)
			hooked++
		}})
		require.NoError(t, err)
		owner := b.ring.Locate("hot")
		for m := 1; m <= 400; m++ {
			i := b.Acquire("hot")
			require.True(t, i >= 0 && i < 8)
			st := b.Stats()
			require.LessOrEqual(t, float64(slices.Max(st.Load)), math.Ceil(c*float64(m)/8), "c=%v after %d", c, m)
		}
		st := b.Stats()
		assert.Equal(t, int64(400), st.Total)
		assert.Positive(t, st.Overflowed, "the hot key overflowed past its owner")
		assert.Equal(t, st.Overflowed, uint64(hooked), "the hook saw every overflow")
		assert.Equal(t, st.Load[owner], slices.Max(st.Load), "the owner is full, not skipped")
	}
}

// Light load stays on the ring owner, so a key sticks to one shard.
func TestBoundedLoads_StickyUnderLightLoad(t *testing.T) {
	b, err := NewBoundedLoads(makeNodes(4), BoundedLoadsOptions{})
	require.NoError(t, err)
	for i := range 200 {
		k := fmt.Sprintf("session:%d", i)
		got := b.Acquire(k)
		assert.Equal(t, b.ring.Locate(k), got, k)
		require.NoError(t, b.Release(got))
	}
	assert.Zero(t, b.Stats().Overflowed)
	assert.Zero(t, b.Stats().Total)
}

func TestBoundedLoads_Concurrent(t *testing.T) {
	b, err := NewBoundedLoads(makeNodes(5), BoundedLoadsOptions{LoadFactor: 1.1})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				s := b.Acquire(fmt.Sprintf("k%d", (g*500+i)%37))
				assert.NoError(t, b.Release(s))
			}
		})
	}
	wg.Wait()
	assert.Zero(t, b.Stats().Total)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = b.Release(b.Acquire("x")) }))
}

// Each Acquire goes exactly where the paper's rule sends it: to the first
// shard, clockwise from the key's point, whose load is below
// ⌈c·(m+1)·w/W⌉ — the owner while it has room, then the next distinct
// shards on the ring in order, never one counter-clockwise.
func TestBoundedLoads_FollowsThePapersRule(t *testing.T) {
	nodes := makeNodes(6)
	nodes[2].Weight = 2
	for _, c := range []float64{1, 1.25, 2} {
		b, err := NewBoundedLoads(nodes, BoundedLoadsOptions{LoadFactor: c})
		require.NoError(t, err)
		order := b.ring.AppendN(nil, "hot", len(nodes)) // owner, then clockwise
		load := make([]int, len(nodes))
		for m := range 300 {
			want := -1
			for _, s := range order {
				if float64(load[s]) < math.Ceil(c*float64(m+1)*nodes[s].Weight/7) {
					want = s
					break
				}
			}
			require.GreaterOrEqual(t, want, 0)
			require.Equal(t, want, b.Acquire("hot"), "c=%v, acquire %d", c, m+1)
			load[want]++
		}
	}
}
