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
