package shard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The defining property of jump hashing: growing from n to n+1 buckets,
// a key either stays or moves to the new bucket n.
func TestJumpHash_MovesOnlyToTheNewBucket(t *testing.T) {
	for k := range uint64(5000) {
		key := mix64(k)
		prev := JumpHash(key, 1)
		require.Equal(t, int64(0), prev)
		for n := int64(2); n <= 64; n++ {
			b := JumpHash(key, n)
			require.True(t, b == prev || b == n-1, "key %d: %d buckets → %d, %d buckets → %d", k, n-1, prev, n, b)
			prev = b
		}
	}
	assert.Equal(t, int64(-1), JumpHash(42, 0))
	assert.Equal(t, int64(-1), JumpHash(42, -5))
}

// Removing the last shard moves only that shard's keys; removing a middle
// one renumbers the rest — why jump is for append-only shard sets.
func TestJump_RemoveLastVersusMiddle(t *testing.T) {
	nodes := makeNodes(10)
	all, err := NewJump(nodes)
	require.NoError(t, err)
	withoutLast, err := NewJump(nodes[:9])
	require.NoError(t, err)
	withoutMiddle, err := NewJump(append(nodes[:4:4], nodes[5:]...))
	require.NoError(t, err)
	ks := keys(20_000)
	movedLast, movedMiddle := 0, 0
	for _, k := range ks {
		was := nodes[all.Locate(k)].Name
		if was != "shard-009" && withoutLast.Nodes()[withoutLast.Locate(k)].Name != was {
			movedLast++
		}
		if withoutMiddle.Nodes()[withoutMiddle.Locate(k)].Name != was {
			movedMiddle++
		}
	}
	assert.Zero(t, movedLast, "dropping the last shard moves only its keys")
	assert.Greater(t, movedMiddle, len(ks)/3, "dropping a middle shard moves far more than its 10%%")
}
