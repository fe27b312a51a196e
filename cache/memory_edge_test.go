package cache

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An entry the policy evicts is reported Expired once its TTL has passed
// (at its expiry instant included) and Evicted otherwise; a Delete of an
// entry at or past its expiry is reported Expired and returns false.
func TestMemoryRemovalReasonsAtExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	var log evictLog
	m, err := NewMemory(2, MemoryOptions[string, int]{Policy: LRU, Shards: 1, OnEvict: log.add, Now: func() time.Time { return now }})
	require.NoError(t, err)
	require.NoError(t, m.SetWithTTL("a", 1, time.Second))
	require.NoError(t, m.Set("b", 2))
	now = now.Add(time.Second) // a expires now
	require.NoError(t, m.Set("c", 3))
	require.NoError(t, m.Set("d", 4))
	assert.Equal(t, []string{"a=1:expired", "b=2:evicted"}, log.list())

	require.NoError(t, m.SetWithTTL("e", 5, time.Second))
	assert.True(t, m.Delete("d"), "a live entry")
	now = now.Add(time.Second)
	assert.False(t, m.Delete("e"), "an entry at its expiry counts as absent")
	assert.False(t, m.Delete("zz"))
	assert.Equal(t, []string{"a=1:expired", "b=2:evicted", "c=3:evicted", "d=4:deleted", "e=5:expired"}, log.list())
}

// Weights from zero up to the whole capacity are stored; a heavier value
// gets ErrTooLarge.
func TestMemoryWeightBounds(t *testing.T) {
	m, err := NewMemory(10, MemoryOptions[string, int]{Shards: 1, Weigher: func(_ string, v int) int64 { return int64(v) }})
	require.NoError(t, err)
	require.NoError(t, m.Set("free", 0))
	require.NoError(t, m.Set("all", 10))
	_, ok := m.Get("all")
	assert.True(t, ok)
	assert.ErrorIs(t, m.Set("more", 11), ErrTooLarge)
}

// By default a store has sixteen shards per CPU (a power of two), fewer
// when a shard would hold under 64 units; the shards' shares of the
// capacity add up to it and differ by one at most.
func TestMemoryDefaultShards(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct{ procs, capacity, shards int }{
		{2, 10_000, 32}, {2, 1000, 8}, {2, 127, 1}, {2, 128, 2}, {3, 100_000, 64}, {1, 64 * 16, 16},
	} {
		runtime.GOMAXPROCS(tc.procs)
		m, err := NewMemory(tc.capacity, MemoryOptions[int, int]{})
		require.NoError(t, err)
		require.Len(t, m.shards, tc.shards, "%d CPUs, capacity %d", tc.procs, tc.capacity)
		sum, lo, hi := int64(0), m.shards[0].capacity, m.shards[0].capacity
		for i := range m.shards {
			c := m.shards[i].capacity
			sum, lo, hi = sum+c, min(lo, c), max(hi, c)
		}
		assert.Equal(t, int64(tc.capacity), sum)
		assert.LessOrEqual(t, hi-lo, int64(1))
	}
	m, err := NewMemory(1001, MemoryOptions[int, int]{Shards: 4})
	require.NoError(t, err)
	assert.Equal(t, []int64{251, 250, 250, 250}, []int64{m.shards[0].capacity, m.shards[1].capacity, m.shards[2].capacity, m.shards[3].capacity})
}

// W-TinyLFU counts misses too: a key looked up often before it is stored
// is admitted over an entry read less. (Not the converse: the sketch's
// hash seed differs per store, and a colliding counter now and then
// lifts a key asked for less.)
func TestMemoryTinyLFUCountsMisses(t *testing.T) {
	for _, tc := range []struct {
		reads, misses int
		kept          bool
	}{{2, 10, true}} {
		m, err := NewMemory(100, MemoryOptions[string, int]{Policy: TinyLFU, Shards: 1})
		require.NoError(t, err)
		for i := range 100 {
			require.NoError(t, m.Set(fmt.Sprint("k", i), i))
		}
		for range tc.reads {
			for i := range 100 {
				m.Get(fmt.Sprint("k", i))
			}
		}
		for range tc.misses {
			_, ok := m.Get("x")
			require.False(t, ok)
		}
		require.NoError(t, m.Set("x", 1))
		require.NoError(t, m.Set("y", 2)) // x leaves the window: the admission decision
		_, ok := m.Get("x")
		assert.Equal(t, tc.kept, ok, "x after %d misses, the others read %d times", tc.misses, tc.reads)
	}
}
