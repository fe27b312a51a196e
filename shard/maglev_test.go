package shard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMaglev_Options(t *testing.T) {
	for _, size := range []int{-1, 1, 100, 65536, 2} {
		_, err := NewMaglev(makeNodes(3), MaglevOptions{TableSize: size})
		assert.ErrorIs(t, err, ErrInvalidConfig, "size %d", size)
	}
	m, err := NewMaglev(makeNodes(3), MaglevOptions{TableSize: 3})
	require.NoError(t, err)
	assert.Equal(t, 3, m.TableSize())
	m, err = NewMaglev(makeNodes(1000), MaglevOptions{})
	require.NoError(t, err)
	assert.Equal(t, 100003, m.TableSize(), "default: smallest prime ≥ 100 × shards")
	m, err = NewMaglev(makeNodes(10), MaglevOptions{})
	require.NoError(t, err)
	assert.Equal(t, DefaultMaglevTableSize, m.TableSize())
}

// Every shard gets within 1% of its share of the table entries.
func TestMaglev_TableShares(t *testing.T) {
	m, err := NewMaglev(makeNodes(10), MaglevOptions{})
	require.NoError(t, err)
	c := make([]int, 10)
	for _, o := range m.table {
		c[o]++
	}
	for i, x := range c {
		assert.InEpsilon(t, float64(m.TableSize())/10, float64(x), 0.01, "shard %d", i)
	}
}

// paperMaglev is the population algorithm of the Maglev paper (Eisenbud et
// al., NSDI 2016, Pseudocode 1) for equal weights: each shard in turn takes
// the next free entry of its permutation (offset + j·skip) mod M, with
// offset and skip from the shard name's hash and the shards in name order.
func paperMaglev(names []string, m int) []int32 {
	n := len(names)
	offset, skip, next := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	for i, name := range names {
		h := hashKey(name)
		offset[i] = h % uint64(m)
		skip[i] = mix64(h^golden)%uint64(m-1) + 1
	}
	entry := make([]int32, m)
	for i := range entry {
		entry[i] = -1
	}
	filled := 0
	for {
		for i := range n {
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			for entry[c] >= 0 {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % uint64(m)
			}
			entry[c] = int32(i)
			next[i]++
			if filled++; filled == m {
				return entry
			}
		}
	}
}

// With equal weights the table is the paper's, entry for entry: keys
// placed by an earlier release stay where they are.
func TestMaglev_MatchesThePaper(t *testing.T) {
	for _, tc := range []struct{ shards, size int }{{1, 7}, {3, 13}, {10, 1009}, {10, DefaultMaglevTableSize}, {37, 65521}} {
		nodes := makeNodes(tc.shards)
		names := make([]string, len(nodes))
		for i, n := range nodes {
			names[i] = n.Name
		}
		m, err := NewMaglev(nodes, MaglevOptions{TableSize: tc.size})
		require.NoError(t, err)
		require.Equal(t, paperMaglev(names, tc.size), m.table, "%d shards, table %d", tc.shards, tc.size)
	}
}

// Unequal weights: each shard's share of the table follows its weight.
func TestMaglev_WeightedShares(t *testing.T) {
	nodes := []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 2}, {Name: "c", Weight: 3}, {Name: "d", Weight: 4}}
	m, err := NewMaglev(nodes, MaglevOptions{})
	require.NoError(t, err)
	c := make([]int, len(nodes))
	for _, o := range m.table {
		c[o]++
	}
	for i, n := range nodes {
		assert.InDelta(t, float64(m.TableSize())*n.Weight/10, float64(c[i]), 2, "shard %s", n.Name)
	}
}

// The table size must be prime: squares of primes are not.
func TestMaglev_TableSizeMustBePrime(t *testing.T) {
	for _, size := range []int{4, 9, 25, 49, 121, 169, 65535} {
		_, err := NewMaglev(makeNodes(3), MaglevOptions{TableSize: size})
		assert.ErrorIs(t, err, ErrInvalidConfig, "size %d", size)
	}
	for _, size := range []int{5, 7, 47, 113, 65521} {
		_, err := NewMaglev(makeNodes(3), MaglevOptions{TableSize: size})
		assert.NoError(t, err, "size %d", size)
	}
}
