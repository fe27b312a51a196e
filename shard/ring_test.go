package shard

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRing_Options(t *testing.T) {
	_, err := NewRing(makeNodes(3), RingOptions{VirtualNodes: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "-1")

	r, err := NewRing(makeNodes(3), RingOptions{})
	require.NoError(t, err)
	assert.Equal(t, 3*DefaultVirtualNodes, r.Points())

	_, err = NewRing([]Node{{Name: "a", Weight: 1e12}}, RingOptions{})
	assert.ErrorIs(t, err, ErrInvalidWeight, "a weight that needs more points than memory allows")
}

// A tiny weight still gets a point, so the shard is reachable.
func TestRing_SmallWeightGetsAPoint(t *testing.T) {
	r, err := NewRing([]Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 1e-9}}, RingOptions{VirtualNodes: 10})
	require.NoError(t, err)
	assert.Equal(t, 11, r.Points())
	assert.Contains(t, r.owners, int32(1))
}

// Removing a shard moves only its keys, and only to surviving shards.
func TestRing_RemoveMovesOnlyTheRemovedShardsKeys(t *testing.T) {
	nodes := makeNodes(8)
	before, err := NewRing(nodes, RingOptions{})
	require.NoError(t, err)
	after, err := NewRing(append(nodes[:3:3], nodes[4:]...), RingOptions{})
	require.NoError(t, err)
	for _, k := range keys(20_000) {
		was := nodes[before.Locate(k)].Name
		now := after.Nodes()[after.Locate(k)].Name
		if was != "shard-003" {
			require.Equal(t, was, now, "key %q moved though its shard stayed", k)
		}
	}
}

func TestRing_Wraparound(t *testing.T) {
	r, err := NewRing(makeNodes(2), RingOptions{VirtualNodes: 1})
	require.NoError(t, err)
	last := r.hashes[len(r.hashes)-1]
	assert.Equal(t, 0, r.search(last+1), "a hash after the last point belongs to the first point")
	assert.Equal(t, len(r.hashes)-1, r.search(last))
}

// Two shards whose points hash to the same position: the smaller name
// keeps it, whatever the insertion order.
func TestRing_CollisionsResolveByName(t *testing.T) {
	for _, order := range [][]Node{{{Name: "b", Weight: 1}, {Name: "a", Weight: 1}}, {{Name: "a", Weight: 1}, {Name: "b", Weight: 1}}} {
		set, err := newNodeSet(order)
		require.NoError(t, err)
		ia, ib := int32(set.index["a"]), int32(set.index["b"])
		r := newRingFromPoints(set, []ringPoint{{100, ib}, {100, ia}, {50, ib}, {200, ia}})
		assert.Equal(t, []uint64{50, 100, 200}, r.hashes)
		assert.Equal(t, "a", order[r.owners[1]].Name, "order %v", order)
	}
}

func TestRing_AppendN(t *testing.T) {
	r, err := NewRing(makeNodes(5), RingOptions{})
	require.NoError(t, err)
	buf := make([]int, 0, 8)
	got := r.AppendN(buf, "user:7", 3)
	require.Len(t, got, 3)
	assert.Equal(t, r.Locate("user:7"), got[0], "the owner comes first")
	assert.NotEqual(t, got[0], got[1])
	assert.NotEqual(t, got[1], got[2])
	assert.NotEqual(t, got[0], got[2])
	assert.Len(t, r.AppendN(nil, "user:7", 99), 5, "at most every shard once")
	assert.Zero(t, testing.AllocsPerRun(100, func() { buf = r.AppendN(buf[:0], "user:7", 3) }))

	// Removing the owner promotes the second choice, as replicas expect.
	nodes := makeNodes(5)
	rest := append(nodes[:got[0]:got[0]], nodes[got[0]+1:]...)
	r2, err := NewRing(rest, RingOptions{})
	require.NoError(t, err)
	assert.Equal(t, nodes[got[1]].Name, rest[r2.Locate("user:7")].Name)
}

// AppendN onto a slice that already holds indexes keeps them and appends
// n more — the same n a fresh call returns.
func TestRing_AppendNOntoNonEmpty(t *testing.T) {
	r, err := NewRing(makeNodes(5), RingOptions{})
	require.NoError(t, err)
	for _, n := range []int{1, 3, 5} {
		got := r.AppendN([]int{7, 8}, "user:7", n)
		assert.Equal(t, append([]int{7, 8}, r.AppendN(nil, "user:7", n)...), got, "n=%d", n)
	}
}

// A shard of weight w has round(VirtualNodes·w) points at
// mix64(hash(name) + j·golden), j = 1, 2, ...; a key belongs to the first
// point at or clockwise after its hash. Checked by brute force on a small
// ring: placements made by an earlier release stay where they are.
func TestRing_PointsAreThePublishedOnes(t *testing.T) {
	nodes := []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 2}, {Name: "c", Weight: 0.5}}
	const vn = 4
	r, err := NewRing(nodes, RingOptions{VirtualNodes: vn})
	require.NoError(t, err)
	type point struct {
		hash  uint64
		owner int
	}
	var points []point
	for i, n := range nodes {
		for j := 1; j <= int(math.Round(vn*n.Weight)); j++ {
			points = append(points, point{mix64(hashKey(n.Name) + uint64(j)*golden), i})
		}
	}
	require.Len(t, points, 4+8+2)
	for _, k := range keys(2_000) {
		h := hashKey(k)
		best, first := -1, -1
		for p, pt := range points {
			if first < 0 || pt.hash < points[first].hash {
				first = p
			}
			if pt.hash >= h && (best < 0 || pt.hash < points[best].hash) {
				best = p
			}
		}
		if best < 0 {
			best = first // wrap around
		}
		require.Equal(t, points[best].owner, r.Locate(k), "key %q", k)
	}
}
