package cache

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Entries never read leave an LRU in the order they came, across more
// epochs than it has lists (the oldest lists merge), and an entry read
// goes after every entry last touched before that read.
func TestLRUPolicyOrderAcrossMerges(t *testing.T) {
	var epoch atomic.Uint32
	p := newLRU[int, int](2*lruBuckets, &epoch) // an epoch per 2 insertions
	const n = 5 * lruBuckets
	nodes := make([]*node[int, int], n)
	for i := range nodes {
		nodes[i] = &node[int, int]{Key: i, Weight: 1}
		p.add(nodes[i])
	}
	require.Equal(t, uint32(n/2), p.cur, "one epoch per span of inserted weight")
	require.Equal(t, p.cur, epoch.Load(), "the epoch is published")
	require.Equal(t, uint32(n/2-lruBuckets+1), p.oldest, "lists older than lruBuckets epochs merged")

	// A read of the first entry, stamped as Get does, files it anew.
	nodes[0].Mark.Store(epoch.Load())
	for i := 1; i < n; i++ {
		v := p.victim()
		require.Same(t, nodes[i], v, "victim %d is entry %d", i, v.Key)
		p.remove(v)
	}
	require.Same(t, nodes[0], p.victim(), "the entry read goes last")
}

// An entry read in an epoch whose list has since merged into the oldest
// one goes first (its read is older than the oldest list can tell apart),
// while one read in the oldest list's own epoch still goes after the
// entries filed before that read.
func TestLRUPolicyReadsInMergedEpochs(t *testing.T) {
	victims := func(readAt, epochs int) []int {
		var epoch atomic.Uint32
		p := newLRU[int, int](lruBuckets, &epoch) // an epoch per insertion
		var out []int
		for i := 1; i <= epochs; i++ {
			p.add(&node[int, int]{Key: i, Weight: 1})
			if i == readAt {
				p.buckets[1].tail.Mark.Store(epoch.Load()) // entry 1, read now
			}
		}
		require.Equal(t, uint32(epochs-lruBuckets+1), p.oldest)
		for range 6 {
			v := p.victim()
			out = append(out, v.Key)
			p.remove(v)
		}
		return out
	}
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6}, victims(3, 70), "read at 3, oldest list 7")
	assert.Equal(t, []int{2, 3, 4, 5, 1, 6}, victims(5, 68), "read at 5, oldest list 5")
}
