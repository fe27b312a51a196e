package shard

import (
	"testing"

	"github.com/cespare/xxhash/v2"
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

// paperJump is the reference code of Lamping and Veach's paper, verbatim.
func paperJump(key uint64, buckets int64) int64 {
	var b, j int64 = -1, 0
	for j < buckets {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return b
}

// The faster loop returns the paper's buckets bit for bit, and Locate is
// the paper's loop over the xxHash of the key (as github.com/dgryski/go-jump
// places keys; bench/shard_test.go checks against it): existing data placed
// by jump hashing stays where it is.
func TestJumpHash_MatchesTheReference(t *testing.T) {
	sizes := []int64{1, 2, 3, 10, 100, 1000, 1001, 65536, 1<<31 - 1, 1 << 31}
	for k := range uint64(50_000) {
		key := mix64(k)
		for _, n := range sizes {
			require.Equal(t, paperJump(key, n), JumpHash(key, n), "key %#x, %d buckets", key, n)
		}
		// Beyond the reference's defined range: still a bucket in range,
		// and the walk ends.
		for _, n := range []int64{1 << 40, 1 << 53, 1<<53 + 1, 1 << 62, 1<<63 - 1} {
			b := JumpHash(key, n)
			require.True(t, b >= 0 && b < n, "key %#x, %d buckets → %d", key, n, b)
		}
	}
	// Keys whose first candidate is exactly a power of two (key>>33 == 0
	// after one LCG step), where the product is an exact integer.
	for _, key := range []uint64{0x7f99a01e6673b154, 0, 1, 1<<64 - 1} {
		for _, n := range sizes {
			require.Equal(t, paperJump(key, n), JumpHash(key, n), "key %#x, %d buckets", key, n)
		}
	}
	for _, n := range []int{1, 7, 10, 100, 1000} {
		j, err := NewJump(makeNodes(n))
		require.NoError(t, err)
		for _, key := range keys(10_000) {
			require.Equal(t, int(paperJump(xxhash.Sum64String(key), int64(n))), j.Locate(key), "key %q, %d shards", key, n)
		}
	}
}

// paperJumpDefined runs the reference code where C defines it: it reports
// false when a candidate reaches 2^63, whose conversion to int64 is
// undefined.
func paperJumpDefined(key uint64, buckets int64) (int64, bool) {
	var b, j int64 = -1, 0
	for j < buckets {
		b = j
		key = key*2862933555777941757 + 1
		p := float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1))
		if p >= 1<<63 {
			return 0, false
		}
		j = int64(p)
	}
	return b, true
}

// jumpCandidates returns the candidates the reference walk visits for key
// below limit.
func jumpCandidates(key uint64, limit int64) []int64 {
	var out []int64
	var b int64
	for {
		key = key*2862933555777941757 + 1
		p := float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1))
		if p >= float64(limit) {
			return out
		}
		b = int64(p)
		out = append(out, b)
	}
}

// Above 2^53 buckets a float64 no longer holds every bucket count and
// JumpHash compares integers instead: it still returns the reference code's
// bucket wherever that code is defined, also when a candidate lands exactly
// on the bucket count (the walk stops before it).
func TestJumpHash_WideMatchesTheReference(t *testing.T) {
	compared, exact := 0, 0
	for k := range uint64(4_000) {
		key := mix64(k)
		for _, n := range []int64{1<<53 + 1, 1<<53 + 12_345, 1 << 60, 1<<62 + 7} {
			if want, ok := paperJumpDefined(key, n); ok {
				require.Equal(t, want, JumpHash(key, n), "key %#x, %d buckets", key, n)
				compared++
			}
		}
		for _, c := range jumpCandidates(key, 1<<62) {
			if c <= 1<<53 {
				continue
			}
			want, ok := paperJumpDefined(key, c)
			require.True(t, ok)
			require.Equal(t, want, JumpHash(key, c), "key %#x, %d buckets (a candidate)", key, c)
			require.Less(t, want, c)
			exact++
		}
	}
	require.Greater(t, compared, 12_000)
	require.Greater(t, exact, 200)
}
