package shard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRendezvous_Without(t *testing.T) {
	nodes := makeNodes(6)
	r, err := NewRendezvous(nodes)
	require.NoError(t, err)
	smaller, err := r.Without("shard-002")
	require.NoError(t, err)
	require.Len(t, smaller.Nodes(), 5)
	for _, k := range keys(5000) {
		was := nodes[r.Locate(k)].Name
		now := smaller.Nodes()[smaller.Locate(k)].Name
		if was != "shard-002" {
			require.Equal(t, was, now, "only the removed shard's keys move (%s)", k)
		}
	}
	_, err = r.Without("nope")
	assert.ErrorIs(t, err, ErrUnknownShard)
	one, err := NewRendezvous(nodes[:1])
	require.NoError(t, err)
	_, err = one.Without("shard-000")
	assert.ErrorIs(t, err, ErrNoShards, "removing the last shard is an error, not a panic")
}
